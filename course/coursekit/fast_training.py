"""Retrain a small compiled Keras model from the same start in milliseconds, for live sliders.

``model.fit`` spends most of its time around the training steps, not in them: per call it sets
up a data adapter, an iterator, callbacks and a progress logger, and per epoch it returns to
Python. For the seed model (13 weights) and 400 points, the steps themselves are tiny.
``FastTrainer`` keeps what matters and drops the rest:

* the *same* model, compiled loss, metrics and optimizer, and the same per-batch step: it calls
  the model's own ``train_step`` (the function ``fit`` calls for every batch: forward pass,
  compiled loss, ``GradientTape``, ``optimizer.apply_gradients``, metric updates);
* the same batching as ``fit(..., batch_size=B, shuffle=False)`` on data put into a fixed order
  per epoch (``orders``), and the same per-epoch logs as ``History.history``;
* but every epoch and every batch inside ONE ``tf.function`` (``tf.range`` loops become a graph
  while-loop), traced once: the optimizer's hyperparameters are ``tf.Variable``\\ s
  (``coursekit.optimizers.make_tunable``), so new slider values need no new graph.

Before each run the weights go back to the saved initial weights and the optimizer's step
counter and slots (Adam's moment estimates) back to zero, so each run equals a fresh ``fit``.
"""

import functools

import numpy as np
import tensorflow as tf

from coursekit.optimizers import make_tunable, reset_optimizer_state, set_hyperparameters


def epoch_orders(n_samples, epochs, shuffle=True, seed=0):
    """The order in which each epoch visits the samples: shape (epochs, n_samples), int32.

    With ``shuffle=False`` every epoch visits 0, 1, ..., n−1, like ``fit(shuffle=False)``.
    """
    if not shuffle:
        return np.tile(np.arange(n_samples, dtype="int32"), (epochs, 1))
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_samples) for _ in range(epochs)]).astype("int32")


class FastTrainer:
    """Run ``epochs`` epochs of ``model.fit`` on ``(X, y)`` as one compiled TensorFlow graph.

    ``train(learning_rate=..., beta_1=...)`` resets the model to its initial weights (the
    weights it has when the trainer is created) and the optimizer to step 0, trains, and returns
    the per-epoch logs like ``History.history`` (``{'loss': array, 'accuracy': array}``).
    ``traces`` counts how often the graph was traced: once, whatever the settings.
    """

    def __init__(self, model, X, y, epochs=50, batch_size=32, shuffle=True, seed=0, jit_compile=False):
        if getattr(model, "optimizer", None) is None:
            raise ValueError("compile the model before creating a FastTrainer")
        self.model = model
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.X = tf.constant(np.asarray(X, dtype="float32"))
        self.y = tf.constant(np.asarray(y, dtype="float32"))
        self.n_samples = int(self.X.shape[0])
        self.steps_per_epoch = -(-self.n_samples // self.batch_size)
        self.orders = epoch_orders(self.n_samples, self.epochs, shuffle, seed)
        self.initial_weights = [np.array(w) for w in model.get_weights()]
        self.optimizer = make_tunable(model.optimizer)
        # Build the optimizer's slots and the compiled loss and metrics now, outside the graph:
        # variables may only be created while a tf.function traces for the first time.
        model.train_step((self.X[: self.batch_size], self.y[: self.batch_size]))
        self.metric_names = list(model.get_metrics_result().keys())
        self.traces = 0
        # functools.partial gives each trainer its own key in TensorFlow's count of tracings per
        # function (a bound method shares its code object with every other trainer's).
        self._train_graph = tf.function(functools.partial(FastTrainer._all_epochs, self), jit_compile=jit_compile,
                                        input_signature=[tf.TensorSpec([self.epochs, self.n_samples], tf.int32)])
        self.reset()

    def reset(self):
        """Initial weights, optimizer at step 0 with empty slots, metrics cleared."""
        for variable, value in zip(self.model.weights, self.initial_weights):
            variable.assign(value)
        reset_optimizer_state(self.optimizer)
        self.model.reset_metrics()

    def _all_epochs(self, orders):
        self.traces += 1  # runs only while tracing
        model, batch, n = self.model, self.batch_size, self.n_samples
        logs = tf.TensorArray(tf.float32, size=self.epochs)
        for epoch in tf.range(self.epochs):
            for metric in model.metrics:  # fit resets the metrics at the start of each epoch
                metric.reset_state()
            order = orders[epoch]
            for step in tf.range(self.steps_per_epoch):
                indices = order[step * batch: tf.minimum((step + 1) * batch, n)]
                model.train_step((tf.gather(self.X, indices), tf.gather(self.y, indices)))
            results = model.get_metrics_result()
            logs = logs.write(epoch, tf.stack([tf.cast(results[name], tf.float32) for name in self.metric_names]))
        return logs.stack()

    def train(self, **hyperparameters):
        """Retrain from the initial weights with these optimizer settings; per-epoch logs."""
        set_hyperparameters(self.optimizer, **hyperparameters)
        self.reset()
        logs = self._train_graph(tf.constant(self.orders)).numpy()
        return {name: logs[:, i].astype("float64") for i, name in enumerate(self.metric_names)}

    @property
    def tracing_count(self):
        """TensorFlow's own count of the traced graphs (the same as ``traces``)."""
        return self._train_graph.experimental_get_tracing_count()
