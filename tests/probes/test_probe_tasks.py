"""Tasks turn sentences into queries, gold candidate sets, labels and the scored mask."""

import numpy as np
import pytest

from probing.data.sentence import Sentence, Triplet
from probing.probes.tasks import AspectOpinionTask, DependencyTask


def test_dependency_task():
    sentence = Sentence(words=["Dogs", "were", "fed", "."], sent_id="s1", heads=np.array([3, 3, 0, 3]),
                        rels=["nsubj:pass", "aux:pass", "root", "punct"])
    example = DependencyTask().example(sentence)
    assert example.spans == [(0,), (1,), (2,), (3,)] and example.gold == [(3,), (3,), (0,), (3,)]
    assert example.labels == ["nsubj", "aux", "root", "punct"]
    assert example.scored.tolist() == [True, True, True, False]
    assert DependencyTask(label_level="exact").example(sentence).labels[0] == "nsubj:pass"
    assert (DependencyTask.metric, DependencyTask.labeled_metric, DependencyTask.root) == ("uas", "las", True)
    with pytest.raises(ValueError, match="gold trees"):
        DependencyTask().example(Sentence(words=["a"], sent_id="s2"))


def test_aspect_opinion_task_merges_an_aspects_opinions():
    # "The fish tacos were great and cheap but the service was slow"
    words = "The fish tacos were great and cheap but the service was slow".split()
    triplets = [Triplet((1, 2), (4,), "POS"), Triplet((9,), (11,), "NEG"), Triplet((1, 2), (6,), "POS")]
    example = AspectOpinionTask().example(Sentence(words=words, sent_id="s", triplets=triplets))
    assert example.spans == [(1, 2), (9,)]
    assert example.gold == [(5, 7), (12,)]  # candidates are 1-based words; no ROOT
    assert example.labels is None and example.scored.tolist() == [True, True]
    assert (AspectOpinionTask.metric, AspectOpinionTask.labeled_metric, AspectOpinionTask.root) == ("acc", None, False)
    with pytest.raises(ValueError, match="triplets"):
        AspectOpinionTask().example(Sentence(words=["a"], sent_id="s2"))
