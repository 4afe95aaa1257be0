//! Wheel installs.
