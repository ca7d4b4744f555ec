//! A byte buffer that is overwritten with zeros when it is dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Bytes of a password, or of something made from one (its lower-case form,
/// the text handed to the estimator), overwritten with zeros when dropped.
///
/// The whole allocation is zeroed, not only the bytes in use, so a buffer
/// that was truncated leaves nothing behind either. The writes are followed
/// by an opaque use of the buffer ([`std::hint::black_box`]) so that the
/// optimiser does not drop them as dead stores before the memory is freed.
///
/// This is best effort: the strength estimator makes copies of its own that
/// this crate cannot reach, and the helper is a short-lived process.
#[derive(Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Shortens the buffer to `len` bytes; the bytes cut off are zeroed now.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            self.0[len..].fill(0);
            self.0.truncate(len);
        }
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl From<String> for SecretBytes {
    fn from(text: String) -> Self {
        SecretBytes(text.into_bytes())
    }
}

impl Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        let capacity = self.0.capacity();
        self.0.clear();
        // Within the capacity: no reallocation, every byte of the
        // allocation is written.
        self.0.resize(capacity, 0);
        std::hint::black_box(self.0.as_slice());
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::from(b"hunter2-swordfish".to_vec());
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "SecretBytes(<redacted>)");
    }

    #[test]
    fn truncate_keeps_the_prefix() {
        let mut secret = SecretBytes::from(b"abcdef".to_vec());
        secret.truncate(3);
        assert_eq!(&*secret, b"abc");
        secret.truncate(10);
        assert_eq!(&*secret, b"abc");
    }
}
