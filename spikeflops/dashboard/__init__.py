"""asv's dashboard of this project, working without internet
(offline.py) and, with --publish, published from results asv alone would split or leave empty (publish.py)."""
