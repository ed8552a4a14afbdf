"""The files contraclust leaves in the folders it writes, so that its readers can tell those folders apart
from data: a run folder holds its lock file for good (``run/folder.py``), and a folder of images
sorted by ``predict --copy-into`` holds a marker. The image reader skips both (``data/images.py``)."""

RUN_LOCK = ".contraclust.lock"
SORTED_MARKER = ".contraclust-sorted"
FOLDER_MARKERS = (RUN_LOCK, SORTED_MARKER)
