//! A list that lives on the stack while it is short.
//!
//! The pieces of a program's scatter are collected before a send or
//! receive; a `Vec` cost a heap allocation and a free per call. Programs
//! rarely pass more than a handful of pieces, so the first `N` stay inline
//! and only a longer scatter spills to the heap.

/// A value to fill unused inline places with.
pub trait Placeholder {
    fn placeholder() -> Self;
}

impl Placeholder for &[u8] {
    fn placeholder() -> Self {
        &[]
    }
}

impl Placeholder for &mut [u8] {
    fn placeholder() -> Self {
        &mut []
    }
}

/// Pieces a send or receive usually has room for without allocating.
pub const INLINE_PIECES: usize = 8;

/// Up to `N` items inline, then on the heap.
pub struct SmallList<T, const N: usize = INLINE_PIECES> {
    inline: [T; N],
    len: usize,
    /// Holds every item once more than `N` were pushed (never empty then).
    spilled: Vec<T>,
}

impl<T: Placeholder, const N: usize> SmallList<T, N> {
    pub fn new() -> Self {
        SmallList {
            inline: std::array::from_fn(|_| T::placeholder()),
            len: 0,
            spilled: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) {
        if self.spilled.is_empty() {
            if self.len < N {
                self.inline[self.len] = item;
                self.len += 1;
                return;
            }
            self.spilled.reserve(2 * N);
            self.spilled.extend(
                self.inline
                    .iter_mut()
                    .map(|x| std::mem::replace(x, T::placeholder())),
            );
        }
        self.spilled.push(item);
    }

    pub fn as_slice(&self) -> &[T] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        if self.spilled.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spilled
        }
    }
}

impl<T: Placeholder, const N: usize> Default for SmallList<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Placeholder, const N: usize> FromIterator<T> for SmallList<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut list = SmallList::new();
        for item in iter {
            list.push(item);
        }
        list
    }
}

impl<T, const N: usize> std::ops::Deref for SmallList<T, N>
where
    T: Placeholder,
{
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, const N: usize> std::ops::DerefMut for SmallList<T, N>
where
    T: Placeholder,
{
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items keep their order across the spill from inline to heap.
    #[test]
    fn keeps_order_inline_and_spilled() {
        let data: Vec<[u8; 1]> = (0..20u8).map(|i| [i]).collect();
        for n in 0..data.len() {
            let list: SmallList<&[u8], 4> = data[..n].iter().map(|d| &d[..]).collect();
            let got: Vec<u8> = list.iter().map(|s| s[0]).collect();
            let want: Vec<u8> = (0..n as u8).collect();
            assert_eq!(got, want, "{n} items");
            assert_eq!(list.spilled.is_empty(), n <= 4, "{n} items");
        }
    }

    #[test]
    fn mutable_items_stay_writable_after_spill() {
        let mut bufs = [[0u8; 2]; 6];
        {
            let mut list: SmallList<&mut [u8], 2> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            for (i, b) in list.iter_mut().enumerate() {
                b[1] = i as u8 + 1;
            }
        }
        assert_eq!(bufs.map(|b| b[1]), [1, 2, 3, 4, 5, 6]);
    }
}
