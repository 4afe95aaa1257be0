//! `pip install` for an image's own interpreter, without running anything
//! from the image and without pip.
//!
//! The target (Python version and ABI, platform tags, install scheme, the
//! distributions already installed) is read from the image's files through
//! [`forge_oci::ImageFiles`]; requirements are resolved for that target and
//! wheels fetched and verified by SHA-256 into a content-addressed cache;
//! wheels are installed per the wheel specification into a layer
//! [`forge_oci::Tree`].

pub mod dist;
pub mod record;
pub mod tags;
pub mod target;
pub mod wheel;

pub use target::{detect, Target, TargetError};
pub use wheel::{install_wheel, uninstall, Installed, WheelError};
