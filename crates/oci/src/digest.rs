//! sha256 content addresses: [`forge_digest::Digest`], the one digest type
//! of the workspace, with its hashing reader and writer, and the
//! descriptors made from it.

use oci_spec::image::{Descriptor, MediaType};

pub use forge_digest::{CopyError, Digest, DigestError, HashingReader, HashingWriter};

/// A descriptor for a blob: media type, digest and size, nothing else.
pub fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type, size, digest.to_oci())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn descriptors_carry_the_digest() {
        let digest = Digest::parse(EMPTY).unwrap();
        let desc = descriptor(MediaType::ImageConfig, &digest, 0);
        assert_eq!(Digest::from_descriptor(&desc).unwrap(), digest);
        assert_eq!(desc.size(), 0);
    }
}
