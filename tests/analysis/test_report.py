from probing.analysis.report import _relative
from probing.analysis.syntax import SyntaxJob
from probing.runner import sub_job_overrides


def test_the_run_overrides_minus_analysis_then_the_jobs_own():
    run = ["model=minilm_l6", "analysis=report", "analysis.tiny=true", "split=dev", "~logger",
           "data@analysis.corpus=tiny"]
    extra = ["split=train", "analysis.min_count=2"]
    # the report's own settings go; a job's value for a key the run also set wins (Hydra takes
    # only one value per key)
    assert sub_job_overrides(run, extra) == ["model=minilm_l6", "~logger", "split=train", "analysis.min_count=2"]


def test_job_overrides_name_the_jobs_fields():
    assert _relative("min_count=50", SyntaxJob) == "analysis.min_count=50"
    assert _relative("+offsets=[1]", SyntaxJob) == "+analysis.offsets=[1]"
    assert _relative("split=train", SyntaxJob) == "split=train"  # not a field: a run-level override
    assert _relative("data@analysis.corpus=tiny", SyntaxJob) == "data@analysis.corpus=tiny"
