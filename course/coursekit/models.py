"""The seed chapter's model, built exactly as the chapter writes it."""

from tensorflow.keras.layers import Activation, Dense, Input
from tensorflow.keras.models import Sequential
from tensorflow.keras.optimizers import Adam


def build_seed_model(compile_model=True):
    """The chapter's example: 2 inputs -> Dense(3) + ReLU -> Dense(1) + sigmoid.

    Compiled, as the chapter does, with ``Adam()``, ``'binary_crossentropy'`` and
    ``['accuracy']``; pass ``compile_model=False`` to get the same network uncompiled.
    """
    model = Sequential()
    model.add(Input(shape=(2,)))
    model.add(Dense(3))
    model.add(Activation("relu"))
    model.add(Dense(1))
    model.add(Activation("sigmoid"))
    if compile_model:
        model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return model
