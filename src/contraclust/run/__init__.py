"""The run's room: one training in one folder (``core``), its stages (``stages``), the folder's lock and
rules (``folder``), and how a run is continued only as itself (``resume``)."""
from contraclust.run.core import END_SECONDS, Run, RunResult
from contraclust.run.folder import (
    CC_STAGE_FOLDER, RunLock, fresh_run_folder, main_process, refuse_a_folder_inside_the_data, refuse_a_held_folder,
)
from contraclust.run.stages import Stage, default_stages

__all__ = ["CC_STAGE_FOLDER", "END_SECONDS", "Run", "RunLock", "RunResult", "Stage", "default_stages",
           "fresh_run_folder", "main_process", "refuse_a_folder_inside_the_data", "refuse_a_held_folder"]
