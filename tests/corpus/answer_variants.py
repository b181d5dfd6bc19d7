"""The grading corpus: answers students really give, each with the score nbgrader must give it.

Each variant replaces the code of one or more cells (by nbgrader grade_id) of a release
notebook; every other answer cell gets the solution's code. ``expect`` lists the points each
grade cell must get; grade cells not listed must get full points (so a variant can never
disturb another question). tests/test_grading_corpus.py puts every variant through the real
``nbgrader autograde`` and compares the gradebook's scores with these numbers: no false pass,
no false fail.

A variant ``kind`` is "right" (a valid answer, must get full points), "wrong" (a misconception
or mistake) or "cheat" (an attempt to get points without the answer).
"""

from dataclasses import dataclass, field


@dataclass
class Variant:
    notebook: str          # "<assignment>/<notebook name without .ipynb>"
    label: str
    kind: str              # right | wrong | cheat
    cells: dict            # grade_id -> replacement source
    expect: dict = field(default_factory=dict)  # grade_id -> points (unlisted grade cells: full points)


QUIZ = "quiz/quiz"
COMPILE = "compile-and-train/compile-for-the-task"
BY_HAND = "compile-and-train/by-hand"
TUNE = "compile-and-train/tune-adam"

Q1_ZERO = {"q1_points": 0}
Q2_ZERO = {"q2_points_ab": 0, "q2_points_cd": 0, "q2_points_ef": 0}


def q1(label, kind, code, points):
    return Variant(QUIZ, f"q1: {label}", kind, {"q1_answer": code}, {"q1_points": points})


def q2(label, kind, code, ab, cd, ef):
    return Variant(QUIZ, f"q2: {label}", kind, {"q2_answer": code},
                   {"q2_points_ab": ab, "q2_points_cd": cd, "q2_points_ef": ef})


VARIANTS = [
    # ---- quiz, question 1: why a sigmoid in the output layer (2 points)
    q1("the key", "right", 'q1_answer = "B"', 2),
    q1("lower case", "right", 'q1_answer = "b"', 2),
    q1("spaces around", "right", 'q1_answer = "  B "', 2),
    q1("in parentheses", "right", 'q1_answer = "(B)"', 2),
    q1("with a full stop", "right", "q1_answer = 'b.'", 2),
    q1("in a list", "right", 'q1_answer = ["B"]', 2),
    q1("in a set", "right", 'q1_answer = {"b"}', 2),
    q1("misconception: sigmoid makes training faster", "wrong", 'q1_answer = "A"', 0),
    q1("misconception: needed for a non-linear boundary", "wrong", 'q1_answer = "C"', 0),
    q1("misconception: outputs exactly 0 or 1", "wrong", 'q1_answer = "D"', 0),
    q1("misconception: Keras requires it", "wrong", 'q1_answer = "e"', 0),
    q1("two letters", "wrong", 'q1_answer = "B, D"', 0),
    q1("a word, not a letter", "wrong", 'q1_answer = "sigmoid"', 0),
    q1("a number", "wrong", "q1_answer = 2", 0),
    q1("not answered", "wrong", "# YOUR CODE HERE\nraise NotImplementedError()", 0),
    q1("a letter without quotes (NameError)", "wrong", "q1_answer = B", 0),
    q1("in a tuple", "right", 'q1_answer = ("b",)', 2),
    q1("str subclass equal to everything", "cheat",
       "class Sneaky(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
       "q1_answer = Sneaky('A')", 0),
    q1("object equal to everything", "cheat",
       "class Anything:\n    def __eq__(self, other):\n        return True\nq1_answer = Anything()", 0),
    Variant(QUIZ, "q1: wrong answer and the hidden test cell emptied", "cheat",
            {"q1_answer": 'q1_answer = "A"', "q1_points": "pass"}, Q1_ZERO),
    Variant(QUIZ, "q1: wrong answer and the test cell replaced by a print", "cheat",
            {"q1_answer": 'q1_answer = "C"', "q1_points": "print('all tests passed')"}, Q1_ZERO),

    # ---- quiz, question 2: roles of loss and metrics (3 points, one per pair of statements)
    q2("the key", "right", 'q2_answer = {"A", "C", "E"}', 1, 1, 1),
    q2("comma-separated string", "right", 'q2_answer = "a, c, e"', 1, 1, 1),
    q2("letters run together", "right", 'q2_answer = "ACE"', 1, 1, 1),
    q2("list in another order", "right", 'q2_answer = ["E", "c", "A"]', 1, 1, 1),
    q2("tuple with spaces", "right", 'q2_answer = (" A", "C ", "E")', 1, 1, 1),
    q2("misconception: metrics are minimised too", "wrong", 'q2_answer = {"A", "B", "C", "E"}', 0, 1, 1),
    q2("misconception: accuracy is the better loss", "wrong", 'q2_answer = {"A", "C", "D", "E"}', 1, 0, 1),
    q2("misconception: no metrics, no training", "wrong", 'q2_answer = {"A", "C", "E", "F"}', 1, 1, 0),
    q2("only the first statement", "wrong", 'q2_answer = "A"', 1, 0, 0),
    q2("every statement", "wrong", 'q2_answer = "ABCDEF"', 0, 0, 0),
    q2("every misconception", "wrong", 'q2_answer = {"B", "D", "F"}', 0, 0, 0),
    q2("an option that does not exist", "wrong", 'q2_answer = {"A", "C", "G"}', 0, 0, 0),
    q2("empty", "wrong", 'q2_answer = ""', 0, 0, 0),
    q2("set subclass containing everything", "cheat",
       "class Everything(set):\n    def __contains__(self, item):\n        return True\n"
       "q2_answer = Everything({'A'})", 0, 0, 0),
    q2("list of objects equal to everything", "cheat",
       "class Anything:\n    def __eq__(self, other):\n        return True\n    def __hash__(self):\n        return 0\n"
       "q2_answer = [Anything()]", 0, 0, 0),
]


# ---- compiling for a task: 1 (model, Adam) + 2 (output and loss) + 1 (metric) per task

def compiled(task, function, body, model, loss, metric, label, kind):
    source = f"def {function}():\n    model = Sequential(hidden_layers(n_features={ {'binary': 2, 'regression': 3}.get(task, 4) }))\n"
    source += "".join(f"    {line}\n" for line in body.strip("\n").splitlines()) + "    return model\n"
    return Variant(COMPILE, f"{task}: {label}", kind, {f"{task}_solution": source},
                   {f"{task}_model": model, f"{task}_loss": loss, f"{task}_metric": metric})


B, O, I, R = "binary", "onehot", "integer", "regression"
BF, OF, IF, RF = "binary_classifier", "onehot_classifier", "integer_label_classifier", "regressor"

VARIANTS += [
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 2, 1, "the chapter's way: strings", "right"),
    compiled(B, BF, "from tensorflow.keras.losses import BinaryCrossentropy\n"
             "from tensorflow.keras.metrics import BinaryAccuracy\n"
             "model.add(Dense(1))\nmodel.add(Activation('sigmoid'))\n"
             "model.compile(optimizer=Adam(learning_rate=0.001), loss=BinaryCrossentropy(), metrics=[BinaryAccuracy()])",
             1, 2, 1, "objects, separate Activation layer, Adam(learning_rate=0.001)", "right"),
    compiled(B, BF, "import tensorflow as tf\n"
             "model.add(Dense(1))\n"
             "model.compile(optimizer='adam', loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),\n"
             "              metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)])",
             1, 2, 1, "linear output with from_logits=True and accuracy at threshold 0", "right"),
    compiled(B, BF, "import tensorflow as tf\n"
             "model.add(Dense(1, activation=tf.nn.sigmoid))\n"
             "model.compile(optimizer=Adam(1e-3), loss='bce', metrics=['acc'])",
             1, 2, 1, "tf.nn.sigmoid, 'bce' and 'acc' aliases", "right"),
    compiled(B, BF, "import tensorflow as tf\n"
             "tf.get_logger().warning('building the binary model')  # TensorFlow's logger writes to stderr\n"
             "import sys\n"
             "sys.stderr.write('W0000 00:00:1795612911.463474    5104 cpu_feature_guard.cc:210] "
             "This TensorFlow binary is optimized to use available CPU instructions.\\n')\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 2, 1, "right answer whose builder writes TensorFlow log lines to stderr", "right"),
    compiled(B, BF, "model.add(Dense(1))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 0, 0, "linear output read as a probability", "wrong"),
    compiled(B, BF, "from tensorflow.keras.losses import BinaryCrossentropy\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss=BinaryCrossentropy(from_logits=True), metrics=['accuracy'])",
             1, 0, 1, "sigmoid output and from_logits=True", "wrong"),
    compiled(B, BF, "import tensorflow as tf\n"
             "model.add(Dense(1))\n"
             "model.compile(optimizer=Adam(), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True), "
             "metrics=['accuracy'])",
             1, 2, 0, "logits with 'accuracy' (thresholds logits at 0.5)", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='mean_squared_error', metrics=['accuracy'])",
             1, 0, 1, "MSE on a classifier", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='relu'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 0, 1, "ReLU output", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['mse'])",
             1, 2, 0, "a regression metric on a classifier", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy')",
             1, 2, 0, "no metric", "wrong"),
    compiled(B, BF, "from tensorflow.keras.optimizers import SGD\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=SGD(), loss='binary_crossentropy', metrics=['accuracy'])",
             0, 2, 1, "SGD instead of Adam", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(learning_rate=0.1), loss='binary_crossentropy', metrics=['accuracy'])",
             0, 2, 1, "Adam with another learning rate", "wrong"),
    compiled(B, BF, "model.add(Dense(2, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='sparse_categorical_crossentropy', metrics=['accuracy'])",
             0, 0, 0, "two softmax units for a one-output task", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))",
             0, 0, 0, "not compiled", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropi', metrics=['accuracy'])",
             1, 0, 0, "misspelled loss", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer='adamw', loss='binary_crossentropy', metrics=['accuracy'])",
             0, 2, 1, "AdamW is not Adam as Keras sets it up", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(amsgrad=True, beta_1=0.5), loss='binary_crossentropy', metrics=['accuracy'])",
             0, 2, 1, "Adam with amsgrad and another beta_1", "wrong"),
    compiled(B, BF, "import keras\n"
             "def my_loss(y_true, y_pred):\n"
             "    return keras.losses.binary_crossentropy(y_true, y_pred)\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer='adam', loss=my_loss, metrics=['accuracy'])",
             1, 2, 1, "a loss function of the student's own, computing binary cross-entropy", "right"),
    compiled(B, BF, "from tensorflow.keras.regularizers import l2\n"
             "model.add(Dense(1, activation='sigmoid', kernel_regularizer=l2(0.01)))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 2, 1, "output layer with a kernel regularizer", "right"),
    compiled(B, BF, "from tensorflow.keras.optimizers import SGD\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=SGD(), loss='binary_crossentropy', metrics=['accuracy'])\n"
             "real = model.get_compile_config()\n"
             "model.get_compile_config = lambda: {**real, 'optimizer': Adam().get_config()}",
             0, 2, 1, "SGD, with get_compile_config patched to report Adam", "cheat"),
    compiled(B, BF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])\n"
             "model.get_compile_config = lambda: {'optimizer': 'sgd', 'loss': 'mse', 'metrics': []}",
             1, 2, 1, "right, with get_compile_config patched to report something else", "right"),
    compiled(B, BF, "from tensorflow.keras.metrics import AUC\n"
             "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=[AUC()])",
             1, 2, 0, "AUC alone, no accuracy", "wrong"),
    compiled(B, BF, "model.add(Dense(1, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 0, 0, "softmax on one unit (always 1)", "wrong"),

    compiled(O, OF, "model.add(Dense(3, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])",
             1, 2, 1, "softmax and categorical cross-entropy", "right"),
    compiled(O, OF, "from tensorflow.keras.layers import Softmax\n"
             "from tensorflow.keras.losses import CategoricalCrossentropy\n"
             "from tensorflow.keras.metrics import CategoricalAccuracy\n"
             "model.add(Dense(3))\nmodel.add(Softmax())\n"
             "model.compile(optimizer='adam', loss=CategoricalCrossentropy(), metrics=[CategoricalAccuracy()])",
             1, 2, 1, "Softmax layer and objects", "right"),
    compiled(O, OF, "from tensorflow.keras.losses import CategoricalCrossentropy\n"
             "model.add(Dense(3))\n"
             "model.compile(optimizer=Adam(), loss=CategoricalCrossentropy(from_logits=True), "
             "metrics=['categorical_accuracy'])",
             1, 2, 1, "logits with from_logits=True", "right"),
    compiled(O, OF, "model.add(Dense(3, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='sparse_categorical_crossentropy', metrics=['accuracy'])",
             1, 0, 0, "sparse loss on one-hot labels", "wrong"),
    compiled(O, OF, "model.add(Dense(3, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])",
             1, 0, 1, "sigmoid instead of softmax", "wrong"),
    compiled(O, OF, "model.add(Dense(1, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])",
             0, 0, 0, "one output unit", "wrong"),

    compiled(I, IF, "model.add(Dense(3, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='sparse_categorical_crossentropy', metrics=['accuracy'])",
             1, 2, 1, "softmax and sparse categorical cross-entropy", "right"),
    compiled(I, IF, "import tensorflow as tf\n"
             "model.add(Dense(3))\n"
             "model.compile(optimizer=Adam(), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),\n"
             "              metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])",
             1, 2, 1, "logits with from_logits=True", "right"),
    compiled(I, IF, "model.add(Dense(3, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='categorical_crossentropy', metrics=['accuracy'])",
             1, 0, 0, "categorical loss on integer labels", "wrong"),
    compiled(I, IF, "model.add(Dense(3, activation='softmax'))\n"
             "model.compile(optimizer=Adam(), loss='mse', metrics=['accuracy'])",
             1, 0, 0, "MSE on integer class labels", "wrong"),

    compiled(R, RF, "model.add(Dense(1))\n"
             "model.compile(optimizer=Adam(), loss='mean_squared_error', metrics=['mae'])",
             1, 2, 1, "MSE loss, MAE metric", "right"),
    compiled(R, RF, "from tensorflow.keras.losses import Huber\n"
             "from tensorflow.keras.metrics import RootMeanSquaredError\n"
             "model.add(Dense(1, activation='linear'))\n"
             "model.compile(optimizer=Adam(), loss=Huber(), metrics=[RootMeanSquaredError()])",
             1, 2, 1, "Huber loss for the outliers, RMSE metric", "right"),
    compiled(R, RF, "model.add(Dense(1))\n"
             "model.compile(optimizer='adam', loss='mae', metrics=['mse'])",
             1, 2, 1, "MAE loss, MSE metric", "right"),
    compiled(R, RF, "from tensorflow.keras.losses import Huber\n"
             "model.add(Dense(1))\n"
             "model.compile(optimizer=Adam(), loss=Huber(delta=5.0), metrics=['mae'])",
             1, 2, 1, "Huber with delta 5", "right"),
    compiled(R, RF, "model.add(Dense(1, activation='relu'))\n"
             "model.compile(optimizer=Adam(), loss='mse', metrics=['mae'])",
             1, 0, 1, "ReLU output cannot predict negative targets", "wrong"),
    compiled(R, RF, "model.add(Dense(1, activation='sigmoid'))\n"
             "model.compile(optimizer=Adam(), loss='binary_crossentropy', metrics=['accuracy'])",
             1, 0, 0, "a classifier for a regression task", "wrong"),
    compiled(R, RF, "model.add(Dense(1))\n"
             "model.compile(optimizer=Adam(), loss='mse', metrics=['accuracy'])",
             1, 2, 0, "accuracy on a regression task", "wrong"),
]


# ---- by hand: binary cross-entropy (1 + 1 + 1) and one Adam step (1 + 2)

def bce(label, kind, body, visible, hidden, extremes):
    source = "def binary_crossentropy(y_true, y_pred):\n" + "".join(f"    {l}\n" for l in body.strip().splitlines())
    return Variant(BY_HAND, f"bce: {label}", kind, {"bce_solution": source},
                   {"bce_visible": visible, "bce_hidden": hidden, "bce_extremes": extremes})


def adam(label, kind, body, visible, hidden):
    source = ("def adam_step(w, g, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):\n"
              + "".join(f"    {l}\n" for l in body.strip().splitlines()))
    return Variant(BY_HAND, f"adam: {label}", kind, {"adam_solution": source},
                   {"adam_visible": visible, "adam_hidden": hidden})


VARIANTS += [
    bce("the formula with np.clip", "right",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))", 1, 1, 1),
    bce("log1p, sum over n, maximum/minimum", "right",
        "p = np.minimum(np.maximum(y_pred, 1e-7), 1 - 1e-7)\n"
        "losses = y_true * np.log(p) + (1 - y_true) * np.log1p(-p)\nreturn -losses.sum() / len(losses)", 1, 1, 1),
    bce("a loop over examples", "right",
        "import math\ntotal = 0.0\nfor y, p in zip(y_true, y_pred):\n"
        "    p = min(max(p, 1e-7), 1 - 1e-7)\n    total += -(y * math.log(p) + (1 - y) * math.log(1 - p))\n"
        "return total / len(y_true)", 1, 1, 1),
    bce("clips in place (np.clip with out=)", "right",
        "np.clip(y_pred, 1e-7, 1 - 1e-7, out=y_pred)\n"
        "return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))", 1, 1, 1),
    bce("no clipping: infinite for predictions of 0 or 1", "wrong",
        "return -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))", 1, 1, 0),
    bce("sign error", "wrong",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))", 0, 0, 0),
    bce("sum instead of mean", "wrong",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn -np.sum(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))", 0, 0, 0),
    bce("per-example losses instead of their mean", "wrong",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))", 0, 0, 0),
    bce("log base 10", "wrong",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn -np.mean(y_true * np.log10(p) + (1 - y_true) * np.log10(1 - p))", 0, 0, 0),
    bce("only the positive term", "wrong",
        "p = np.clip(y_pred, 1e-7, 1 - 1e-7)\nreturn -np.mean(y_true * np.log(p))", 0, 0, 0),
    bce("returns an object equal to everything", "cheat",
        "class Anything(float):\n    def __eq__(self, other):\n        return True\n"
        "    def __sub__(self, other):\n        return 0.0\n    __rsub__ = __sub__\n"
        "    def __abs__(self):\n        return 0.0\nreturn Anything(0.0)", 0, 0, 0),

    adam("the paper's form (bias-corrected moments)", "right",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "m_hat = m / (1 - beta_1 ** t)\nv_hat = v / (1 - beta_2 ** t)\n"
         "w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)\nreturn w, m, v", 1, 2),
    adam("Keras's form (bias correction folded into the step size)", "right",
         "m = m + (g - m) * (1 - beta_1)\nv = v + (np.square(g) - v) * (1 - beta_2)\n"
         "alpha = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)\n"
         "w = w - alpha * m / (np.sqrt(v) + epsilon)\nreturn (w, m, v)", 1, 2),
    adam("updates its arrays in place", "right",
         "m *= beta_1\nm += (1 - beta_1) * g\nv *= beta_2\nv += (1 - beta_2) * g ** 2\n"
         "w -= learning_rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)\nreturn w, m, v", 1, 2),
    adam("returns a list", "right",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "w = w - learning_rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)\n"
         "return [w, m, v]", 1, 2),
    adam("epsilon inside the square root", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "w = w - learning_rate * (m / (1 - beta_1 ** t)) / np.sqrt(v / (1 - beta_2 ** t) + epsilon)\n"
         "return w, m, v", 1, 0),
    adam("epsilon left out", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "w = w - learning_rate * (m / (1 - beta_1 ** t)) / np.sqrt(v / (1 - beta_2 ** t))\nreturn w, m, v", 1, 0),
    adam("no bias correction", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "w = w - learning_rate * m / (np.sqrt(v) + epsilon)\nreturn w, m, v", 0, 0),
    adam("v averages g instead of g squared", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * np.abs(g)\n"
         "m_hat = m / (1 - beta_1 ** t)\nv_hat = v / (1 - beta_2 ** t)\n"
         "w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)\nreturn w, m, v", 0, 0),
    adam("bias correction with t - 1", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "m_hat = m / (1 - beta_1 ** (t + 1))\nv_hat = v / (1 - beta_2 ** (t + 1))\n"
         "w = w - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)\nreturn w, m, v", 0, 0),
    adam("adds the step instead of subtracting it", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "m_hat = m / (1 - beta_1 ** t)\nv_hat = v / (1 - beta_2 ** t)\n"
         "w = w + learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)\nreturn w, m, v", 0, 0),
    adam("returns only the weights", "wrong",
         "m = beta_1 * m + (1 - beta_1) * g\nv = beta_2 * v + (1 - beta_2) * g ** 2\n"
         "return w - learning_rate * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)", 0, 0),
    adam("plain gradient descent", "wrong", "return w - learning_rate * g, m, v", 0, 0),
]


# ---- tuning Adam: form (1) + target on the given data (1) + target on fresh data (2)

def tune(label, kind, code, form, visible, hidden):
    return Variant(TUNE, f"tune: {label}", kind, {"tune_solution": code},
                   {"tune_form": form, "tune_visible": visible, "tune_hidden": hidden})


VARIANTS += [
    tune("a larger learning rate", "right", "ADAM_SETTINGS = dict(learning_rate=0.03)", 1, 1, 2),
    tune("learning rate and beta_1, as a dict literal", "right",
         'ADAM_SETTINGS = {"learning_rate": 0.05, "beta_1": 0.9}', 1, 1, 2),
    tune("integer-free floats in scientific notation", "right", "ADAM_SETTINGS = dict(learning_rate=2e-2)", 1, 1, 2),
    tune("a NumPy number from np.linspace", "right",
         "import numpy as np\nADAM_SETTINGS = dict(learning_rate=np.linspace(0.01, 0.05, 9)[7])", 1, 1, 2),
    tune("Keras's defaults", "wrong", "ADAM_SETTINGS = {}", 1, 0, 0),
    tune("True as a learning rate", "wrong", "ADAM_SETTINGS = dict(learning_rate=True)", 0, 0, 0),
    tune("a smaller learning rate", "wrong", "ADAM_SETTINGS = dict(learning_rate=0.0005)", 1, 0, 0),
    tune("learning rate as a string", "wrong", 'ADAM_SETTINGS = dict(learning_rate="0.03")', 0, 0, 0),
    tune("Keras 2's 'lr' keyword", "wrong", "ADAM_SETTINGS = dict(lr=0.03)", 0, 0, 0),
    tune("beta_1 above 1", "wrong", "ADAM_SETTINGS = dict(learning_rate=0.03, beta_1=1.5)", 0, 0, 0),
    tune("an Adam object instead of settings", "wrong",
         "from tensorflow.keras.optimizers import Adam\nADAM_SETTINGS = Adam(learning_rate=0.03)", 0, 0, 0),
]


def pack_into_submissions(variants):
    """Greedy packing: each submission holds variants that touch disjoint cells."""
    submissions = []
    for variant in variants:
        touched = set(variant.cells) | set(variant.expect)
        for submission in submissions:
            if not touched & submission["touched"]:
                submission["variants"].append(variant)
                submission["touched"] |= touched
                break
        else:
            submissions.append({"variants": [variant], "touched": touched})
    return [submission["variants"] for submission in submissions]
