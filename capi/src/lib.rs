//! libspread placeholder
