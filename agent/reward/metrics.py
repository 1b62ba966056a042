"""Precision, recall and the decision threshold of a success classifier, from scored frames."""

from __future__ import annotations

import numpy as np


def precision_recall(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Frame-level precision, recall, F1 and accuracy of ``probs >= threshold`` against ``labels``."""
    pred = probs >= threshold
    truth = labels > 0.5
    tp, fp, fn = int(np.sum(pred & truth)), int(np.sum(pred & ~truth)), int(np.sum(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "accuracy": float(np.mean(pred == truth)), "positives": int(truth.sum()), "frames": len(truth),
            "true_positives": tp, "false_positives": fp, "false_negatives": fn}


def choose_threshold(probs: np.ndarray, labels: np.ndarray, target_precision: float) -> dict[str, float]:
    """The lowest threshold (most recall) whose precision reaches ``target_precision``; when none
    does, the one with the best F1. Returns its ``precision_recall`` plus ``reached`` (bool as 0/1)."""
    candidates = np.unique(np.clip(probs, 1e-6, 1 - 1e-6))
    best, best_f1 = None, None
    for t in candidates:  # ascending: the first that reaches the target keeps the most recall
        m = precision_recall(probs, labels, float(t))
        if m["precision"] >= target_precision and m["true_positives"] > 0:
            return {**m, "reached": 1.0}
        if best_f1 is None or m["f1"] > best_f1:
            best, best_f1 = m, m["f1"]
    assert best is not None
    return {**best, "reached": 0.0}
