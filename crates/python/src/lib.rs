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
pub mod fetch;
pub mod index;
pub mod lock;
pub mod record;
pub mod resolve;
pub mod resolve_error;
pub mod tags;
pub mod target;
pub mod uv;
pub mod wheel;

pub use fetch::fetch;
pub use lock::PipLock;
pub use resolve::{installed_of, resolve, LockedWheel, PipRequest, ResolveEnv};
pub use resolve_error::ResolveError;
pub use target::{detect, Target, TargetError};
pub use uv::Uv;
pub use wheel::{install_wheel, uninstall, Installed, WheelError};
