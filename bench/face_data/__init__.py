"""Face calibration data from the population that certifies: East-Asian and older faces, and kinship pairs.

Pinned in ``manifest.csv`` (repository, commit, path and sha256 of every file), fetched from repository snapshots
into a cache (``$PENSION_CERT_FACES_DIR`` or ``~/.cache/pension-cert/faces``) by ``scripts/fetch_face_data.sh``.
Nothing here is committed but the manifest and the code. Sources, licences and counts: ``docs/face_data.md``.
"""
