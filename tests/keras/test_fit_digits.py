"""End to end on a real data set: a Keras MLP with CosineClassifier + the ArcFace MarginLoss learns sklearn's digits
with model.fit, saves to .keras, reloads, and predicts exactly the same."""

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from snippet_loader import load_snippet

km = load_snippet("keras/margins.py")


def test_arcface_mlp_learns_digits_and_survives_save_and_load(tmp_path):
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        (x / 16.0).astype("float32"), y, test_size=0.25, stratify=y, random_state=0
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(32),  # the embedding
            km.CosineClassifier(embedding_size=32, num_classes=10),  # cosines, no softmax
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=km.MarginLoss("arcface", s=30.0, m=0.5), metrics=["accuracy"]
    )
    history = model.fit(x_train, y_train, batch_size=64, epochs=12, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))

    cosines = model.predict(x_test, verbose=0)
    assert cosines.min() >= -1.0 - 1e-6 and cosines.max() <= 1.0 + 1e-6
    accuracy = float(np.mean(np.argmax(cosines, axis=1) == y_test))
    print(
        f"FIT ({keras.backend.backend()}): held-out digits accuracy {accuracy:.4f} on {len(y_test)} images, "
        f"final training loss {history.history['loss'][-1]:.4f}"
    )
    assert accuracy >= 0.95

    path = tmp_path / "arcface_digits.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.layers[-1]).__name__ == "CosineClassifier"
    assert type(restored.loss).__name__ == "MarginLoss" and restored.loss.margin_args == {"s": 30.0, "m": 0.5}
    np.testing.assert_array_equal(restored.predict(x_test, verbose=0), cosines)
