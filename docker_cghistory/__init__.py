"""docker-cghistory: the build history of Chainguard image tags, as a Docker CLI plugin.

Kept import-free: the plugin metadata and completion paths import this package first.
"""

__version__ = "0.1.0"
