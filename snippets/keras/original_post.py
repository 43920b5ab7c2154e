"""The Keras ArcFace example of the blog post this guide grew from, re-created for Keras 3, and its correction.

The post ended with a short Keras model and an `arcface_loss` function. The code below keeps it line for line;
only what had to change to run at all on Keras 3 (and on every backend) is changed, marked `# changed:`. The
five places where it does not compute ArcFace are marked `# defect N:`; tests/keras/test_original_post.py shows
each with numbers:

1. the labels are cast to float before a sparse (integer-label) cross-entropy: TensorFlow's
   tf.nn.sparse_softmax_cross_entropy_with_logits rejects float labels; Keras 3 casts them back silently;
2. the model ends in Dense + softmax, so y_pred is a probability in (0, 1), not a cosine: the weights are not
   normalized and the "cosine" is never negative;
3. cos(θ + m) is applied to EVERY class whose value exceeds the threshold, not only to the true class;
4. past θ + m > π the fallback is s·cos θ instead of s·(cos θ - m·sin m): the target logit jumps UP there;
5. sqrt(1 - cos²θ) is not guarded: the gradient is inf or NaN at cos θ = ±1.

The corrected version keeps the post's network and training call and swaps the last layers and the loss for
this guide's `CosineClassifier` (normalized weights, no bias, no softmax: the model outputs cosines) and
`MarginLoss("arcface")` (integer labels, margin on the target column only, the θ + m > π fallback, a guarded
square root), both from margins.py next to this file. ArcFace: Deng et al., "ArcFace: Additive Angular Margin
Loss for Deep Face Recognition", CVPR 2019, arXiv:1801.07698; s = 30 and m = 0.5 rad as in the post.

Run `KERAS_BACKEND=torch python snippets/keras/original_post.py` to train both on the post's random data.
"""

import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import ops
from keras.layers import Activation, BatchNormalization, Dense, Input, Lambda  # changed: was tensorflow.keras.layers
from keras.models import Model  # changed: was tensorflow.keras.models

# The corrected version uses the guide's Keras layer and loss from margins.py, which sits next to this file.
_spec = importlib.util.spec_from_file_location("keras_margins", Path(__file__).with_name("margins.py"))
margins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(margins)
CosineClassifier, MarginLoss = margins.CosineClassifier, margins.MarginLoss

# --8<-- [start:arcface_loss]
# parameters, as in the post
embedding_size = 512
num_classes = 10
s = 30.0  # scaling factor
m = 0.5  # margin (radians)


def arcface_loss(y_true, y_pred):
    cos_m = ops.cos(m)  # changed: tf.math.cos -> keras.ops.cos (the same for sin and the threshold)
    sin_m = ops.sin(m)
    threshold = ops.cos(np.pi - m)

    y_true = ops.cast(y_true, "float32")  # defect 1: integer class ids become floats
    cos_t = y_pred  # defect 2: the model's output is a softmax probability, not a cosine
    sin_t = ops.sqrt(1.0 - ops.square(cos_t))  # defect 5: infinite slope at cos_t = ±1: inf or NaN gradient

    cos_mt = s * (cos_t * cos_m - sin_t * sin_m)
    cond = cos_t > threshold  # defect 3: true for almost every class, not only the target
    cos_t = ops.where(cond, cos_mt, s * cos_t)  # defect 4: the fallback s·cos_t jumps up at θ = π - m

    # changed: was tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=cos_t), which rejects the
    # float labels on TensorFlow; Keras 3's sparse cross-entropy casts them back to integers without a word
    return ops.sparse_categorical_crossentropy(y_true, cos_t, from_logits=True)


# --8<-- [end:arcface_loss]


# --8<-- [start:create_model]
def create_model(input_shape, num_classes):
    inputs = Input(shape=input_shape)
    x = Dense(512)(inputs)
    x = BatchNormalization()(x)
    x = Activation("relu")(x)
    embeddings = Dense(embedding_size)(x)
    norm_embeddings = Lambda(lambda x: ops.normalize(x, axis=1))(embeddings)  # changed: was tf.nn.l2_normalize

    # fully connected layer for classification
    logits = Dense(num_classes)(norm_embeddings)  # defect 2: weights not normalized, plus a bias

    # softmax output
    outputs = Activation("softmax")(logits)  # defect 2: probabilities in (0, 1) reach the loss as "cosines"

    model = Model(inputs, outputs)
    return model


# --8<-- [end:create_model]


# --8<-- [start:create_corrected_model]
def create_corrected_model(input_shape, num_classes):
    inputs = Input(shape=input_shape)
    x = Dense(512)(inputs)
    x = BatchNormalization()(x)
    x = Activation("relu")(x)
    embeddings = Dense(embedding_size)(x)
    # normalized embeddings and class weights, no bias, no softmax: the model outputs cos θ_j (fixes 2)
    cosines = CosineClassifier(embedding_size, num_classes)(embeddings)
    return Model(inputs, cosines)


# integer labels, margin on the target column only, θ + m > π fallback, guarded sqrt (fixes 1, 3, 4, 5)
corrected_loss = MarginLoss("arcface", s=s, m=m)
# predict: the argmax of the cosines is the class; the cosines themselves compare embeddings
# --8<-- [end:create_corrected_model]


# --8<-- [start:train_like_the_post]
def train_like_the_post(model, loss, x_train, y_train, epochs=10, verbose="auto"):
    """The post's training call: Adam, batch 32, 10 epochs."""
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=verbose)


# --8<-- [end:train_like_the_post]


if __name__ == "__main__":
    # the post's data: 100 random 128-dimensional inputs with random labels
    keras.utils.set_random_seed(0)
    input_shape = (128,)
    X_train = np.random.rand(100, *input_shape).astype(np.float32)
    y_train = np.random.randint(0, num_classes, 100)

    old = train_like_the_post(create_model(input_shape, num_classes), arcface_loss, X_train, y_train, verbose=0)
    new = train_like_the_post(
        create_corrected_model(input_shape, num_classes), corrected_loss, X_train, y_train, verbose=0
    )
    for name, history in [("post's code", old), ("corrected  ", new)]:
        losses = ", ".join(f"{v:.3f}" for v in history.history["loss"])
        print(f"{name}: loss per epoch {losses}; last accuracy {history.history['accuracy'][-1]:.2f}")
