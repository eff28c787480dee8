"""
Predict cell types from activity: NeuronEmbedding + LogisticRegression, tuned by GridSearchCV
=============================================================================================

The sample is a neuron. ``Recordings`` holds whole sessions and behaves like an array of
neurons, so ``StratifiedKFold`` splits neurons while every fold keeps each neuron's session
(population context, behavior) intact. Inside each fold, ``NeuronEmbedding`` trains the
behavior-reading teacher and the distilled NeuPRINT student on the training neurons; the test
neurons' embeddings are then fitted with the student's dynamics frozen. The teacher does not
depend on ``alpha`` or ``tau``, so it is trained once per fold, not once per candidate.

Run: ``python examples/cell_types_pipeline.py`` (prints its wall time);
``SKLEARN_BLEND_QUICK=1`` runs a two-epoch version.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_blend import NeuronEmbedding
from sklearn_blend.datasets import make_cell_types

QUICK = os.environ.get("SKLEARN_BLEND_QUICK") == "1"  # the tests' and docs' short run

start = time.perf_counter()
data = make_cell_types(n_sessions=2, n_neurons=60 if QUICK else 120,
                       n_frames=400 if QUICK else 1200, random_state=0)
neurons = np.arange(len(data.ei))
train, test = train_test_split(neurons, test_size=0.25, stratify=data.ei, random_state=0)

pipe = Pipeline([
    ("embedding", NeuronEmbedding(strategy="soft", embedding_dim=16, hidden_size=32,
                                  ffn_size=64, n_window=32, group_size=16,
                                  max_epochs=2 if QUICK else 10,
                                  embedding_epochs=2 if QUICK else 10, random_state=0)),
    ("scale", StandardScaler()),
    ("classifier", LogisticRegression(class_weight="balanced", max_iter=5000)),
])
search = GridSearchCV(
    pipe,
    {"embedding__alpha": [0.3, 0.7], "embedding__tau": [1.0] if QUICK else [1.0, 4.0]},
    cv=StratifiedKFold(2 if QUICK else 3, shuffle=True, random_state=0),
    scoring="balanced_accuracy",
)
search.fit(data.X[train], data.ei[train])
predicted = search.predict(data.X[test])  # new neurons: embeddings fitted, dynamics frozen

print("best parameters:", search.best_params_)
print(f"cross-validated balanced accuracy: {search.best_score_:.3f}")
print(f"held-out neurons, balanced accuracy (EI): "
      f"{balanced_accuracy_score(data.ei[test], predicted):.3f}")
print(f"wall time: {time.perf_counter() - start:.0f} s")

embedding = search.best_estimator_["embedding"].transform(data.X[test])
fig, ax = plt.subplots(figsize=(4, 3.5))
for label, name in ((0, "excitatory"), (1, "inhibitory")):
    chosen = data.ei[test] == label
    ax.scatter(*embedding[chosen, :2].T, s=8, label=name)
ax.set(xlabel="embedding 0", ylabel="embedding 1", title="held-out neurons")
ax.legend()
fig.tight_layout()
plt.show()
