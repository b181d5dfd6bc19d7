"""The course's one-page cheat-sheet (``course/cheat-sheet.md``), made from the lessons' own tables.

``tools/update_course_pages.py`` writes the page from ``markdown()``; a test regenerates it and
compares, and ``tests/test_cheat_sheet.py`` checks every row and every pitfall against Keras.
The rows come from ``coursekit.losses.LOSS_TABLE`` (lesson 3), the optimizer defaults from Keras
itself, so the page cannot drift from the lessons.
"""

from coursekit.losses import LOSS_TABLE, accuracy_table_markdown

PAGE = "cheat-sheet.md"
TITLE = "Cheat-sheet: compiling a tf.keras model"

# (short title, text). Each one is checked by a test in tests/test_cheat_sheet.py named after it.
PITFALLS = [
    ("`'accuracy'` looks at shapes, not at the loss",
     "`compile` turns `metrics=['accuracy']` into `BinaryAccuracy` when the output has one unit, into "
     "`SparseCategoricalAccuracy` when the labels are class indices, and into `CategoricalAccuracy` otherwise. "
     "A multi-label model (K sigmoids, `'binary_crossentropy'`) therefore gets argmax accuracy: pass "
     "`[BinaryAccuracy()]` instead. A model that outputs logits gets threshold 0.5 on the logits: pass "
     "`[BinaryAccuracy(threshold=0.0)]`."),
    ("A misspelled loss is found at `fit`, not at `compile`",
     "`compile(loss='binary_crossentropi')` raises nothing; `fit` raises `ValueError: Could not interpret loss "
     "identifier: binary_crossentropi`. A misspelled optimizer fails at `compile` already."),
    ("Labels in the format the loss expects",
     "`'categorical_crossentropy'` needs one-hot rows such as `[0, 1, 0]`, `'sparse_categorical_crossentropy'` "
     "class indices such as `1`. The wrong pair fails at `fit` with a `ValueError` about shapes; "
     "`tf.keras.utils.to_categorical(y, K)` turns indices into one-hot rows."),
    ("No sigmoid, no `from_logits=True`: training goes blind",
     "`'binary_crossentropy'` clips its input into [1e-7, 1 − 1e-7] before the logarithm. Raw outputs of a "
     "`Dense(1)` without activation that fall outside (0, 1) get the clipped loss and a gradient of zero: those "
     "examples stop teaching the model. Use a sigmoid, or `BinaryCrossentropy(from_logits=True)`."),
    ("`F1Score()` needs `threshold=0.5` for one sigmoid output",
     "Without a threshold it marks the largest output of each row as positive, and a row with one output has "
     "only one: every example counts as predicted 1."),
    ("Accuracy cannot be a loss",
     "`loss='accuracy'` fails at `fit` (`Could not interpret loss identifier: accuracy`); passing the accuracy "
     "function fails with `No gradients provided for any variable`. Its gradient is zero or undefined "
     "everywhere."),
    ("On imbalanced data, accuracy flatters",
     "With 5 % positives, a model that always answers \"no\" has accuracy 0.95. Report `Recall()`, "
     "`Precision()` or `AUC()` as well."),
]

OPTIMIZER_KNOBS = ("learning_rate", "momentum", "rho", "beta_1", "beta_2", "epsilon")


def optimizer_defaults():
    """{'SGD': {'learning_rate': 0.01, ...}, ...} read from Keras's own ``get_config()``."""
    import keras

    defaults = {}
    for optimizer in (keras.optimizers.SGD, keras.optimizers.RMSprop, keras.optimizers.Adam):
        config = optimizer().get_config()
        defaults[optimizer.__name__] = {name: float(f"{config[name]:.7g}") for name in OPTIMIZER_KNOBS
                                        if name in config}
    return defaults


def _task_table():
    lines = ["| task | labels look like | output layer | `loss=` | `metrics=` |", "|---|---|---|---|---|"]
    for row in LOSS_TABLE:
        lines.append(f"| {row.task} | `{row.labels}` | `{row.output_layer}` | `{row.loss}` | `{row.metrics}` |")
    return "\n".join(lines)


def _optimizer_table():
    lines = ["| optimizer | defaults |", "|---|---|"]
    for name, values in optimizer_defaults().items():
        lines.append(f"| `{name}()` | " + ", ".join(f"`{key}={value:g}`" for key, value in values.items()) + " |")
    return "\n".join(lines)


def markdown(lessons):
    """The page. ``lessons``: [(file name, short title)] in reading order, for the links."""
    links = " · ".join(f"[{title}]({name})" for name, title in lessons)
    pitfalls = "\n".join(f"{number}. **{title}.** {text}" for number, (title, text) in enumerate(PITFALLS, start=1))
    return f"""# {TITLE}

One page to keep open while you work: for each task the output layer, the loss and the metrics to pass to
`compile`, then the mistakes that cost learners the most time. Every row and every pitfall is checked against
TensorFlow 2.21 (Keras 3) by the course's tests.

The lessons: {links} · then the [exercises](../exercises/README.md).

## Task → output layer → loss → metrics

{_task_table()}

`K` is the number of classes or tags. The output layer comes after your hidden layers, for example
`Sequential([Input(shape=(2,)), Dense(8, activation='relu'), Dense(1, activation='sigmoid')])`, and then
`model.compile(optimizer='adam', loss=..., metrics=...)`.

## What `metrics=['accuracy']` becomes

`compile` chooses the accuracy from the shapes of the labels and of the model's output, never from the loss.
Where the choice does not fit the task (✗), pass the metric in the last column instead.

{accuracy_table_markdown()}

## Optimizers: Keras's defaults

{_optimizer_table()}

A string such as `optimizer='adam'` gives the optimizer with these defaults; pass an object, e.g.
`Adam(learning_rate=0.01)`, to change them.

## Pitfalls

{pitfalls}
"""
