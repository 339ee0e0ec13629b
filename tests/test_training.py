"""The default training recipe: steps per graph call, callbacks."""

from __future__ import annotations

from tfrec._keras import keras, tf
from tfrec.training import _steps_per_execution, train


def test_steps_per_execution_never_exceeds_an_epoch_or_guesses_unknown_lengths() -> None:
    assert _steps_per_execution(tf.data.Dataset.range(100).batch(10)) == 10
    assert _steps_per_execution(tf.data.Dataset.range(1000).batch(10)) == 32
    unknown = tf.data.Dataset.range(100).filter(lambda x: x > 3).batch(10)
    assert _steps_per_execution(unknown) == 1


def test_train_runs_several_steps_per_call_and_passes_callbacks(small) -> None:
    epochs = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(epoch))
    result = train("implicit_mf", small, seed=0, verbose=0, epochs=2, batch_size=256, callbacks=[callback])
    assert epochs == [0, 1] and result.epochs_run == [0, 1]
    assert int(result.model._steps_per_execution.numpy()) == min(32, -(-len(small) // 256))
    one = train("implicit_mf", small, seed=0, verbose=0, epochs=2, batch_size=256, steps_per_execution=1)
    assert int(one.model._steps_per_execution.numpy()) == 1
    # Several steps per call change how often Python runs, not the training itself.
    assert (
        abs(one.history["loss"][-1] - result.history["loss"][-1]) < 1e-3 * abs(one.history["loss"][-1]) + 1e-4
    )
