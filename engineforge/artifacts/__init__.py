"""Stage outputs as MLflow run artifacts: how built engines travel between hosts with no shared disk.

`manifest` describes a logged directory (MANIFEST.json: every file's size and sha256, the stage key,
the tool versions); `transfer` uploads one file at a time and downloads, serving nothing that does
not match its manifest; `remote_tier` finds an entry logged under a stage key by any run of the
experiment; `server` runs `mlflow server` with proxied artifacts on loopback for one machine.
"""
