"""Session-state keys used by the pages, in one place. Values stored under them are ids and plain dicts.

Editable config lives under FORM_VALUES (not a widget key), so it survives switching pages.
"""

FORM_VALUES = "train_form_values"        # dict: field -> text/bool, the Train form's content
TRAIN_FIELD = "train_field."             # prefix of the Train form's widget keys, e.g. "train_field.lr"; a widget
                                         # keeps its identity while its value changes (values live under FORM_VALUES)
ACTIVE_RUN = "train_active_run"          # run id this browser session is watching on the Train page
LIVE_RUN = "train_live_run"              # run id the live fragment saw running (to rerun the app once it ends)
PENDING_START = "train_pending_start"    # dict: config + name waiting for "start another?" confirmation
LAST_START = "train_last_start"          # [config json, time] of the last start, to absorb double clicks
OWN_RUNS = "own_runs"                    # run and sweep ids this browser session started (the demo's owner check)
PREDICT_RUN = "predict_run"              # run id chosen on the Predict page
RUNS_FILTER = "runs_filter"              # the Runs page's pandas query text (a widget key)
RUNS_SELECTED = "runs_selected"          # run ids picked for comparison on the Runs page (a widget key)
RUNS_TABLE_FILTER = "runs_table_filter"  # pandas query over a logged table on the Runs page (a widget key)
RUNS_DETAIL = "runs_detail"              # run id whose details the Runs page shows (a widget key)
RUNS_NOTICE = "runs_notice"              # one-line message shown once after a rename or delete
SWEEP_SELECTED = "sweeps_selected"       # sweep id the Sweeps page shows
SWEEP_LIVE = "sweeps_live"               # sweep id the live fragment saw running (to rerun the app once it ends)
SWEEP_FORM = "sweeps_form"               # prefix of the Sweeps form's widget keys, e.g. "sweeps_form.lr.dist"
SWEEP_YAML = "sweeps_yaml"               # the Sweeps page's YAML editor (a widget key, kept for the session)
TRANSFORMS_PIPELINE = "transforms_pipeline"    # list of {"name", "params"} dicts: the Transforms page's pipeline
TRANSFORMS_SEED = "transforms_seed"            # int: the seed the pipeline's random steps run with
TRANSFORMS_REVISION = "transforms_revision"    # int: bumped when steps change shape, so widgets start afresh
TRANSFORMS_SOURCE = "transforms_source"        # the image source picked on the Transforms page (a widget key)
TRANSFORMS_DATASET = "transforms_dataset"      # the dataset a sample image comes from (a widget key)
TRANSFORMS_INDEX = "transforms_sample_index"   # the index of that validation sample (a widget key)
TRANSFORMS_UPLOAD = "transforms_upload"        # the uploaded image (a widget key)
TRANSFORMS_ADD = "transforms_add_name"         # the name of the step to add (a widget key)
