"""Helpers for the course "Compiling a tf.keras model: optimizer, loss and metrics".

Lessons import what they need from here so that a notebook reads like a lesson:
``data`` makes the data sets (generated in code, nothing is downloaded), ``models`` builds
the seed chapter's model, ``plots`` draws titled and labelled figures.

Importing this package first keeps TensorFlow's C++ start-up lines (oneDNN notices, absl
warnings) out of notebook outputs: they go to stderr, and nbgrader scores a test cell 0 when
it writes to stderr. The variables only take effect if they are set before TensorFlow loads;
the course's Jupyter kernel (``coursekit.install``) sets them too, for notebooks that import
TensorFlow first.
"""

import logging
import os
from contextlib import contextmanager

QUIET_TENSORFLOW_ENV = {
    # 3 = only fatal C++ log lines.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # The oneDNN notice is printed before TF_CPP_MIN_LOG_LEVEL is read; turning the custom
    # oneDNN ops off also makes CPU results independent of the thread schedule.
    "TF_ENABLE_ONEDNN_OPTS": "0",
}

for _name, _value in QUIET_TENSORFLOW_ENV.items():
    os.environ.setdefault(_name, _value)

# TensorFlow's Python logger writes notices such as "... triggered tf.function retracing" when
# lessons train several models in a row; they say nothing about the lesson.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _quiet_tensorflow_logger():
    """Keep TensorFlow's Python logger at ERROR once TensorFlow has configured it.

    TensorFlow configures that logger the first time it logs, and in an interactive shell such as
    a Jupyter kernel it then sets the level to INFO (and writes to stdout), undoing the line above.
    ``tf.get_logger()`` makes it configure itself now, so that the level set afterwards stays.
    """
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)

EXPECTED_TENSORFLOW = "2.21"
EXPECTED_KERAS_MAJOR = 3

__all__ = ["QUIET_TENSORFLOW_ENV", "check_versions", "expect_error", "seed_everything", "sharp_figures"]


def check_versions():
    """Assert the versions the lessons were written and tested against; return them.

    The course's claims about defaults, configs and error messages are checked against
    TensorFlow 2.21 with Keras 3; another version may print other numbers. Every lesson calls it
    first, so it also keeps TensorFlow's Python logger quiet (``_quiet_tensorflow_logger``).
    """
    import keras
    import tensorflow as tf

    assert tf.__version__.startswith(EXPECTED_TENSORFLOW + "."), (
        f"This course needs TensorFlow {EXPECTED_TENSORFLOW}, found {tf.__version__}: "
        "run the course from its own environment (./run lab)."
    )
    assert int(keras.__version__.split(".")[0]) == EXPECTED_KERAS_MAJOR, (
        f"This course needs Keras {EXPECTED_KERAS_MAJOR}, found {keras.__version__}."
    )
    _quiet_tensorflow_logger()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def sharp_figures():
    """Show the notebook's Matplotlib figures at twice the pixels of their size on screen.

    IPython's inline backend then renders PNGs at 2x ("retina") and tells JupyterLab to display
    them at half their pixel size: the same size on screen, sharp text on HiDPI screens. The
    course's widgets do the same on their own (``coursekit.widgets``).
    """
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")


def seed_everything(seed=42):
    """Make a run repeatable: seeds Python, NumPy and TensorFlow and clears old models.

    ``keras.utils.set_random_seed`` seeds all three generators at once; clearing the session
    resets Keras's layer-name counters so that summaries read the same on every run.
    """
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    _quiet_tensorflow_logger()


@contextmanager
def expect_error(*error_types):
    """Run a block that is meant to fail and print the real error Keras raised.

    Lessons show mistakes (fitting an uncompiled model, a misspelled loss) without stopping
    the notebook. If the block does *not* fail, that is an error: the lesson's claim is wrong.
    """
    error_types = error_types or (Exception,)
    try:
        yield
    except error_types as error:
        print(f"{type(error).__name__}: {error}")
    else:
        raise AssertionError(f"expected {' or '.join(t.__name__ for t in error_types)}, but the code ran")
