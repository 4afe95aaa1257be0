//! Where a run's images go besides the store: one tarball per plugin
//! (what `build` and `build-all` write by default), one archive of every
//! image built (`--archive FILE`), or neither when the registry is the
//! output (`publish`, `build-all --push`). The command line decides which
//! ([`Outputs`]); this module writes them through forge-oci's one archive
//! writer, and leaves a file alone that is already what it would write
//! (`forge_oci::update_archive`).
//!
//! The archive is written once every build has finished, from the images
//! that built, in the order of their names, so its bytes do not depend on
//! `-j` or on which build finished first.

use std::path::{Path, PathBuf};

use forge_builder::Built;
use forge_oci::{ArchiveImage, RefNames, Written};

use crate::{Attestation, Error, Outcome, Session};

/// What a run writes besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// A tarball per plugin under the out directory.
    pub tarballs: bool,
    /// One archive of every image built, at this path.
    pub archive: Option<PathBuf>,
}

impl Default for Outputs {
    /// A tarball per plugin, no archive.
    fn default() -> Outputs {
        Outputs { tarballs: true, archive: None }
    }
}

/// Where an image is in the archive of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The archive file.
    pub file: PathBuf,
    /// The image's `org.opencontainers.image.ref.name` there, its full
    /// name (`REGISTRY/NAME:TAG`): `skopeo copy oci-archive:FILE:REF`.
    pub ref_name: String,
    /// Whether the file was written, or left as it was (the same bytes).
    pub written: Written,
}

impl Session {
    /// Writes the tarball of `built` with its `attestations`, if the run
    /// writes tarballs.
    pub(crate) fn write_tarball(
        &self,
        built: &Built,
        attestations: &[Attestation],
    ) -> Result<Option<PathBuf>, Error> {
        if !self.outputs().tarballs {
            return Ok(None);
        }
        let referrers: Vec<_> = attestations.iter().flat_map(Attestation::descriptors).collect();
        Ok(Some(self.workspace().export_with(built, &referrers, self.out_dir())?))
    }

    /// Writes the run's archive (if it has one) of the images of
    /// `outcomes` that built, and says in each where its image is. When
    /// none built, the file is left as it was rather than emptied.
    pub(crate) fn write_archive(&self, outcomes: &mut [Outcome]) -> Result<(), Error> {
        let Some(file) = &self.outputs().archive else { return Ok(()) };
        let artifacts: Vec<_> = outcomes.iter_mut().filter_map(|o| o.result.as_mut().ok()).collect();
        if artifacts.is_empty() {
            return Ok(());
        }
        let images: Vec<ArchiveImage> = artifacts
            .iter()
            .map(|a| {
                let referrers: Vec<_> = a.attestations.iter().flat_map(Attestation::descriptors).collect();
                a.built.archive_image(&referrers)
            })
            .collect();
        let written = write_archive_file(self, &images, file)?;
        for artifact in artifacts {
            artifact.archive =
                Some(Archived { file: file.clone(), ref_name: artifact.built.image.clone(), written });
        }
        Ok(())
    }
}

/// Writes `images` to the archive `file`, its directory made first and
/// the temporaries of killed runs there removed.
fn write_archive_file(session: &Session, images: &[ArchiveImage], file: &Path) -> Result<Written, Error> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| forge_input::IoError::new("creating", dir, e))?;
    forge_oci::temp::remove(dir, forge_oci::temp::Scope::Stale);
    forge_oci::update_archive(session.workspace().store(), images, RefNames::Reference, file)
        .map_err(|source| Error::Archive { path: file.to_path_buf(), source })
}
