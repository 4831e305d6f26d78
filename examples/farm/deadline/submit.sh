#!/usr/bin/env bash
# Submit one shot's facepipe edit to Deadline's CommandLine plugin as three jobs, each dependent
# on the one before: prepare -> edit (Frames 0-239 in chunks of 50: <STARTFRAME>-<ENDFRAME>) -> assemble.
# Edit the paths, the shot's frame range and the emotion in the *.txt files beside this script first.
# --deblur-method (and --deblur-weights CKPT for gan) must be the same in prepare and edit: it keys the
# tracking the chunks read; add --deblur to edit's arguments to deliver the restored faces.
set -euo pipefail
cd "$(dirname "$0")"
deadlinecommand -SubmitMultipleJobs -dependent \
    -job prepare.job.txt prepare.plugin.txt \
    -job edit.job.txt edit.plugin.txt \
    -job assemble.job.txt assemble.plugin.txt
