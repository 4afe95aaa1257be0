//! The comparison with the host's real pip (written next).
