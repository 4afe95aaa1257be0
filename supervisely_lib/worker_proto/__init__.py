"""Task types and modes shared by the agent and the plugins.

The plugin PYTHONPATH convention puts this directory on the path; in the real
SDK it held the agent's generated protocol modules.
"""

# Plugin types (plugin_info.json "type").
IMPORT = "import"
ARCHITECTURE = "architecture"
DTL = "dtl"
CUSTOM = "custom"
PLUGIN_TYPES = (IMPORT, ARCHITECTURE, DTL, CUSTOM)

# Modes of an architecture plugin, each with its own src/<mode>.py entry point.
TRAIN = "train"
INFERENCE = "inference"
DEPLOY = "deploy"
NN_MODES = (TRAIN, INFERENCE, DEPLOY)

# Exit codes the agent reports on the task page.
EXIT_OK = 0
EXIT_BAD_CONFIG = 2
