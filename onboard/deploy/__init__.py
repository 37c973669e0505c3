"""``roach deploy``: bundles, their manifest, the copy to the robot and its activation
(docs/deploy.md). ``target.py`` is the part that runs on the robot."""
