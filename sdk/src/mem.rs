//! `memcmp` and `bcmp` for the guest, eight bytes at a time.
//!
//! Decoding a Kubernetes object compares strings all the time: every JSON key against the
//! field names of its struct, every map key against the keys already in its `BTreeMap`. In a
//! `wasm32-wasip2` build those comparisons call the C library's `memcmp` (wasi-libc's, a
//! byte-at-a-time loop), which a profile of a decoded Pod get put at the top of the guest's
//! time (about a tenth). These definitions take the place of wasi-libc's in the plugin (the
//! linker uses a symbol defined in the program before it looks in the C library); natively
//! nothing changes.

/// Compares `a` and `b` like C's `memcmp`: negative, zero or positive as `a` sorts before,
/// with or after `b`, byte by byte as unsigned. Both must have the same length.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // natively only its test calls it
pub(crate) fn compare(a: &[u8], b: &[u8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    let mut i = 0;
    let n = a.len().min(b.len());
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        if x != y {
            // Little-endian: the lowest differing bit is in the first differing byte.
            let at = i + (x ^ y).trailing_zeros() as usize / 8;
            return i32::from(a[at]) - i32::from(b[at]);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return i32::from(a[i]) - i32::from(b[i]);
        }
        i += 1;
    }
    0
}

#[cfg(target_arch = "wasm32")]
mod exported {
    #![allow(unsafe_code)]

    /// # Safety
    /// `a` and `b` must be valid for reads of `n` bytes (C's contract for `memcmp`).
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        if n == 0 {
            return 0;
        }
        // SAFETY: the caller passes two buffers of at least `n` readable bytes.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, n),
                std::slice::from_raw_parts(b, n),
            )
        };
        super::compare(a, b)
    }

    /// # Safety
    /// As [`memcmp`]; only zero or not zero is meaningful.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the same contract as memcmp.
        unsafe { memcmp(a, b, n) }
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    fn sign(o: std::cmp::Ordering) -> i32 {
        o as i32
    }

    #[test]
    fn compare_orders_like_byte_slices_at_every_length_and_position() {
        for len in 0..40usize {
            let base: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            assert_eq!(compare(&base, &base), 0);
            for at in 0..len {
                for delta in [1u8, 0x7f, 0x80, 0xff] {
                    let mut other = base.clone();
                    other[at] = other[at].wrapping_add(delta);
                    let got = compare(&base, &other);
                    assert_eq!(got.signum(), sign(base.cmp(&other)), "len {len} at {at}");
                    assert_eq!(got, i32::from(base[at]) - i32::from(other[at]));
                    // A later difference never outweighs an earlier one.
                    if at + 1 < len {
                        other[len - 1] = other[len - 1].wrapping_sub(delta);
                        assert_eq!(compare(&base, &other).signum(), sign(base.cmp(&other)));
                    }
                }
            }
        }
    }
}
