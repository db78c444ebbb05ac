"""Tasks turn sentences into queries, gold candidate sets, labels and the scored mask."""

import numpy as np
import pytest

from probing.data.sentence import Sentence, Triplet
from probing.probes.tasks import AspectOpinionTask, DependencyTask


def test_dependency_task():
    sentence = Sentence(words=["Dogs", "were", "fed", "."], sent_id="s1", heads=np.array([3, 3, 0, 3]),
                        rels=["nsubj:pass", "aux:pass", "root", "punct"])
    example = DependencyTask(label_level="base").example(sentence)
    assert example.spans == [(0,), (1,), (2,), (3,)] and example.gold == [(3,), (3,), (0,), (3,)]
    assert example.labels == ["nsubj", "aux", "root", "punct"]
    assert example.scored.tolist() == [True, True, True, False]
    assert DependencyTask(label_level="exact").example(sentence).labels[0] == "nsubj:pass"
    assert (DependencyTask.metric, DependencyTask.labeled_metric, DependencyTask.root) == ("uas", "las", True)
    with pytest.raises(ValueError, match="gold trees"):
        DependencyTask(label_level="base").example(Sentence(words=["a"], sent_id="s2"))


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


def test_the_control_task_gives_each_word_type_one_fixed_behaviour():
    from probing.probes.tasks import BEHAVIOURS, ControlDependencyTask

    task = ControlDependencyTask(seed=0)
    words = "The cat saw the dog and the cat ran .".split()
    sentence = Sentence(words=words, sent_id="c", heads=np.array([2, 3, 0, 5, 3, 9, 8, 9, 3, 3]),
                        rels=["det", "nsubj", "root", "det", "obj", "cc", "det", "nsubj", "conj", "punct"])
    ex = task.example(sentence)
    n = len(words)
    for w, (word, (gold,)) in enumerate(zip(words, ex.gold)):
        want = {"self": w + 1, "first": 1, "last": n}[task.behaviour(word)]
        assert gold == want, word
    # a type behaves the same wherever it stands and whatever its case: The / the, cat / cat
    assert task.behaviour("The") == task.behaviour("the") and ex.gold[1] == ex.gold[7]
    assert ex.labels is None and ex.scored.tolist() == [True] * 9 + [False]  # punctuation out, as in UAS
    # over many types the three behaviours are about equally common, and the seed redraws them
    vocab = [f"w{i}" for i in range(3000)]
    shares = [sum(task.behaviour(v) == b for v in vocab) / len(vocab) for b in BEHAVIOURS]
    assert all(0.3 < s < 0.37 for s in shares)
    other = ControlDependencyTask(seed=1)
    assert 0.55 < sum(task.behaviour(v) != other.behaviour(v) for v in vocab) / len(vocab) < 0.78
