//! Integration tests of forge-python: target detection over small fake
//! images, wheel installs of fixture wheels made here, and the comparison
//! with the host's real pip.

mod fixture;
mod pip;
mod target;
mod wheel;
