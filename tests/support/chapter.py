"""The chapter the course is built on (its "Model Compilation" page), as far as the lessons quote it, word for word.

The chapter is not part of the repository; these are its sentences, copied once, so that a test can check every
quote a lesson makes (tests/test_course_pages.py).
"""

TEXT = """
After constructing a neural network model in Keras, the next crucial step is model compilation. This step is necessary
because it defines how the model should update during training and how it should evaluate its performance.
There are three key components of model compilation:
- Optimizer: determines how the network will be updated based on the loss function. It implements the specific variant
of the gradient descent algorithm (backpropagation step).
- Loss function: measures how well the model is performing. A model aims to minimize this function.
- Metrics: used to monitor the training and testing steps. Unlike the loss function, metrics are not used for training
the model but for evaluating its performance.
Adam combines the advantages of two other optimizers: momentum (helps to navigate along relevant directions and
smoothens the journey) and RMSprop (adjusts the learning rate for each parameter).
It is often chosen due to its efficiency and minimal requirement for tuning.
During training, the primary goal is to minimize this loss function. This is achieved by adjusting the model's weights
through backpropagation.
Metrics are used to evaluate the performance of the model. Unlike loss functions, they are not used for training the
model but rather for monitoring during training and testing.
We'll compile the model we created in the previous chapter using the Adam optimizer. Let's assume that we are solving a
classification problem where the output is a probability, so this value must be in the range from 0 to 1.
1. In the provided example, why is the sigmoid activation function used in the output layer?
2. How do the roles of loss functions and metrics differ in the context of model compilation and training?
"""


def words(text):
    """Lower-case words and numbers, so that line breaks, quotes and punctuation do not matter."""
    import re

    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))
