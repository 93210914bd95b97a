import numpy as np
import pytest
from PIL import Image

from cyclegan.errors import InputImageError

from conftest import phantom_slice


@pytest.mark.parametrize("shape", [(32, 32), (33, 47), (181, 217), (217, 181), (257, 64)])
def test_translation_keeps_height_and_width(tiny_translator, shape):
    image = phantom_slice(*shape)
    for direction in ("t1_to_t2", "t2_to_t1"):
        out = tiny_translator.translate(image, direction)
        assert out.shape == shape and out.dtype == np.float32
        assert np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0


def test_named_directions_match_translate(tiny_translator):
    image = phantom_slice()
    assert np.array_equal(tiny_translator.t1_to_t2(image), tiny_translator.translate(image, "t1_to_t2"))
    assert np.array_equal(tiny_translator.t2_to_t1(image), tiny_translator.translate(image, "t2_to_t1"))


def test_cycle_is_translation_of_translation(tiny_translator):
    image = phantom_slice(70, 90)
    forward, back = tiny_translator.translate_with_cycle(image, "t1_to_t2")
    assert np.array_equal(forward, tiny_translator.t1_to_t2(image))
    assert np.array_equal(back, tiny_translator.cycle(image, "t1_to_t2"))
    # The reconstruction is t2_to_t1 applied to the raw translation, as in training.
    raw = forward[None, ..., None] * 2.0 - 1.0
    raw = np.pad(raw, [(0, 0), (0, 10), (0, 6), (0, 0)], constant_values=-1.0)
    expected = tiny_translator.generators["t2_to_t1"](raw)
    expected = (np.asarray(expected)[0, :70, :90, 0] + 1.0) / 2.0
    np.testing.assert_allclose(back, np.clip(expected, 0, 1), atol=1e-4)
    assert back.shape == image.shape



def test_cycle_check_returns_the_input_as_the_network_saw_it(tiny_translator):
    from cyclegan.preprocessing import scale_intensities

    image = phantom_slice(70, 90).astype(np.float64) * 3.0 + 40.0  # any intensity window
    forward, back, seen = tiny_translator.cycle_check(image, "t2_to_t1")
    assert np.array_equal(forward, tiny_translator.t2_to_t1(image))
    assert np.array_equal(back, tiny_translator.cycle(image, "t2_to_t1"))
    expected = (scale_intensities(image)[0] + 1.0) / 2.0
    np.testing.assert_allclose(seen, expected, atol=1e-6)
    assert seen.shape == image.shape and seen.min() >= 0.0 and seen.max() <= 1.0

def test_pil_and_16_bit_inputs(tiny_translator):
    base = phantom_slice()
    out8 = tiny_translator.t1_to_t2(Image.fromarray(base))
    out16 = tiny_translator.t1_to_t2(Image.fromarray(base.astype(np.uint16) * 257))
    rgb = tiny_translator.t1_to_t2(Image.fromarray(base).convert("RGB"))
    np.testing.assert_allclose(out8, out16, atol=1e-4)
    np.testing.assert_allclose(out8, rgb, atol=1e-4)


def test_unknown_direction(tiny_translator):
    with pytest.raises(InputImageError, match="direction"):
        tiny_translator.translate(phantom_slice(), "t1_to_flair")


def test_bad_image_error_reaches_caller(tiny_translator):
    with pytest.raises(InputImageError, match="constant"):
        tiny_translator.t1_to_t2(np.zeros((64, 64)))


def test_slices_in_batches_match_single_images(tiny_translator):
    slices = [phantom_slice(60, 50, seed=s) for s in range(5)]
    slices[2] = np.zeros((60, 50), np.uint8)  # a blank slice stays blank
    calls = []
    volume = tiny_translator.translate_slices(
        slices, "t2_to_t1", batch_size=2, progress=lambda done, total: calls.append((done, total))
    )
    assert volume.shape == (5, 60, 50)
    assert not volume[2].any()
    for i in (0, 1, 3, 4):
        np.testing.assert_allclose(volume[i], tiny_translator.t2_to_t1(slices[i]), atol=1e-5)
    assert calls == [(2, 4), (4, 4)]
    with pytest.raises(InputImageError, match="same size"):
        tiny_translator.translate_slices([phantom_slice(60, 50), phantom_slice(64, 50)], "t1_to_t2")
    with pytest.raises(InputImageError, match="no slices"):
        tiny_translator.translate_slices([], "t1_to_t2")


def test_bfloat16_inference_stays_close(tiny_folder, tiny_translator):
    from cyclegan.hub import load_generators

    fast = load_generators(tiny_folder, precision="bfloat16", warmup=False)
    assert fast.precision == "bfloat16"
    image = phantom_slice(70, 90)
    for direction in ("t1_to_t2", "t2_to_t1"):
        reference = tiny_translator.translate(image, direction)
        out = fast.translate(image, direction)
        assert out.shape == reference.shape and out.dtype == np.float32
        assert np.abs(out - reference).mean() < 0.02


def test_precision_choices(tiny_folder, monkeypatch):
    import keras

    from cyclegan import inference
    from cyclegan.hub import load_generators
    from cyclegan.inference import resolve_precision

    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == ("bfloat16" if keras.backend.backend() == "tensorflow" else "float32")
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") == "float32"
    with pytest.raises(InputImageError, match="precision"):
        load_generators(tiny_folder, precision="int8", warmup=False)


def _same_generators(translator, reframe):
    from cyclegan.inference import Translator

    return Translator(translator.generators["t1_to_t2"], translator.generators["t2_to_t1"],
                      config=translator.config, warmup=False, reframe=reframe)


def test_a_head_framed_far_wider_than_the_training_slices_is_translated_within_a_closer_frame(tiny_translator):
    from cyclegan.preprocessing import REFRAME_MARGIN, head_window, scale_intensities

    assert tiny_translator.reframe  # on by default
    keep = _same_generators(tiny_translator, False)
    head = phantom_slice(96, 80)
    for direction in ("t1_to_t2", "t2_to_t1"):  # framed as training slices are: untouched
        assert np.array_equal(tiny_translator.translate(head, direction), keep.translate(head, direction))
    wide = np.pad(head, 100)
    box = head_window([scale_intensities(wide)[0]], margin=0, above=-1)
    window = head_window([scale_intensities(wide)[0]])
    assert box[0] >= 100 and window == (box[0] - REFRAME_MARGIN, box[1] + REFRAME_MARGIN,
                                        box[2] - REFRAME_MARGIN, box[3] + REFRAME_MARGIN)
    top, bottom, left, right = window
    outside = np.ones(wide.shape, bool)
    outside[top:bottom, left:right] = False
    for direction in ("t1_to_t2", "t2_to_t1"):
        out = tiny_translator.translate(wide, direction)
        assert out.shape == wide.shape
        np.testing.assert_array_equal(out[top:bottom, left:right], keep.translate(wide[top:bottom, left:right],
                                                                                  direction))
        assert out[outside].max() == 0.0
        assert np.abs(out - keep.translate(wide, direction)).max() > 1e-3  # the wide frame changes the output
        translation, back, seen = tiny_translator.cycle_check(wide, direction)
        closer = keep.cycle_check(wide[top:bottom, left:right], direction)
        for full, part in zip((translation, back, seen), closer):
            np.testing.assert_array_equal(full[top:bottom, left:right], part)
            assert full[outside].max() == 0.0
        stack = tiny_translator.translate_slices(np.stack([wide, np.zeros_like(wide), wide]), direction, batch_size=2)
        np.testing.assert_allclose(stack[0], out, atol=1e-5)
        np.testing.assert_allclose(stack[2], out, atol=1e-5)
        assert stack[1].max() == 0.0


def test_head_window_finds_the_head_and_ignores_lone_bright_pixels():
    from cyclegan.preprocessing import MIN_SIDE, head_window

    air = -np.ones((300, 260), np.float32)
    assert head_window([air]) is None  # no head
    small = air.copy()
    small[5:15, 240:250] = 1.0  # a tiny head in a corner: the window stays inside the image, and
    small[200, 30] = 1.0  # a lone bright pixel in the air is not part of the head
    # rows: 5-15 widened by 16 is cut at the top to 0-31, too short, so MIN_SIDE from the top;
    # columns: 240-250 widened by 16 is cut at the right side to 224-260
    assert head_window([small]) == (0, MIN_SIDE, 224, 260)
    wide = air.copy()
    wide[20:280, 10:250] = 0.5  # the head near every side: the input keeps its frame
    assert head_window([wide]) is None
    # a volume: one window around every slice's head
    other = air.copy()
    other[150:200, 100:120] = 1.0
    both = head_window([small, other], margin=0, above=0)
    assert both == (5, 200, 100, 250)


def test_a_model_brings_inputs_closer_past_the_air_its_own_training_slices_had(tiny_translator):
    from cyclegan.inference import Translator
    from cyclegan.preprocessing import REFRAME_ABOVE, REFRAME_SLACK, head_box, mean_air, most_air, scale_intensities

    head = np.pad(phantom_slice(96, 80), 30)  # about 30 px of air a side: the default keeps the frame
    scaled = scale_intensities(head)[0]
    air = mean_air(head_box([scaled]), head.shape)
    assert 25 < air < REFRAME_ABOVE and most_air([scaled, np.pad(scaled, 5, constant_values=-1)]) == air + 5
    assert most_air([-np.ones((40, 40))]) is None

    def with_record(framing):
        card = {"training": {"framing": framing}} if framing is not None else {}
        return Translator(tiny_translator.generators["t1_to_t2"], tiny_translator.generators["t2_to_t1"],
                          config=tiny_translator.config, card=card, warmup=False)

    assert with_record(None).reframe_above == REFRAME_ABOVE and with_record(None).closer_frame(head) is None
    tight = with_record({"most_air": 10.0})  # a model trained on slices with at most 10 px of air
    assert tight.reframe_above == 10.0 + REFRAME_SLACK and tight.closer_frame(head) is not None
    roomy = with_record({"most_air": 80.0})
    assert roomy.closer_frame(np.pad(head, 40)) is None  # 70 px: less than its own slices had
    for broken in ({"most_air": "wide"}, {"most_air": -3}, {"most_air": float("nan")}, {"most_air": True}, {}):
        assert with_record(broken).reframe_above == REFRAME_ABOVE
