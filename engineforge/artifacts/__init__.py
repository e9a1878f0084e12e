"""Stage outputs: the content-addressed store on this host, and how built engines travel between hosts
with no shared disk.

`store` is the content-addressed store, the only cache and lock of the stages; `lockfile` what a run used,
stamped on the image and checked by `pull`. `manifest` describes a logged directory (MANIFEST.json: every
file's size and sha256, the stage key, the tool versions); `transfer` uploads one file at a time and
downloads, serving nothing that does not match its manifest; `remote_tier` finds an entry logged under a
stage key by any run of the experiment; `server` runs `mlflow server` with proxied artifacts on loopback
for one machine.
"""
