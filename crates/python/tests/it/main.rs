//! Integration tests of forge-python: target detection over small fake
//! images, wheel installs of fixture wheels made here, the comparison
//! with the host's real pip, and resolutions and downloads against PyPI.

mod fixture;
mod network;
mod pip;
mod target;
mod wheel;
