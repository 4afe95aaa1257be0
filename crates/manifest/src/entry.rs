//! Entry points: the Python files under `src/` that the platform starts.

use std::fmt;

/// A mode of a plugin, started as `src/<mode>.py`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryPoint {
    /// `src/main.py`: import, DTL and custom plugins.
    Main,
    /// `src/train.py`: neural network training.
    Train,
    /// `src/inference.py`: neural network inference.
    Inference,
    /// `src/deploy.py`: a model served as a long-running task.
    Deploy,
    /// `src/deploy_smart.py`: the smart-tool variant of deploy.
    DeploySmart,
}

impl EntryPoint {
    /// Every entry point, in the order `build_plugin.sh` lists them in the
    /// `MODES` label.
    pub const ALL: [EntryPoint; 5] = [
        EntryPoint::Main,
        EntryPoint::Train,
        EntryPoint::Inference,
        EntryPoint::Deploy,
        EntryPoint::DeploySmart,
    ];

    /// The mode name, as in the `MODES` label.
    pub fn name(self) -> &'static str {
        match self {
            EntryPoint::Main => "main",
            EntryPoint::Train => "train",
            EntryPoint::Inference => "inference",
            EntryPoint::Deploy => "deploy",
            EntryPoint::DeploySmart => "deploy_smart",
        }
    }

    /// The file, relative to the plugin directory.
    pub fn path(self) -> String {
        format!("src/{}.py", self.name())
    }

    /// The entry point named `name`, if any.
    pub fn from_name(name: &str) -> Option<EntryPoint> {
        EntryPoint::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `MODES` label value: present entry points in [`EntryPoint::ALL`]
/// order, joined by single spaces.
pub fn modes_label(present: &[EntryPoint]) -> String {
    EntryPoint::ALL
        .into_iter()
        .filter(|e| present.contains(e))
        .map(EntryPoint::name)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_build_plugin_order() {
        let present = [EntryPoint::Inference, EntryPoint::Deploy, EntryPoint::Train];
        assert_eq!(modes_label(&present), "train inference deploy");
        assert_eq!(modes_label(&[]), "");
    }
}
