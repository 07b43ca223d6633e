"""The vault: the key hierarchy (KEK → one DEK per dataset) and encrypted blobs on disk.

Everything imagery-shaped that the appliance stores is a blob in the format of `stream.py`, under a data key from
`models.DataKey`, wrapped by the KEK of a provider from `keys.py`. Plaintext imagery never touches disk. This app
depends on nothing above `auditlog`: datasets, models and exports call into it, never the reverse.
"""
