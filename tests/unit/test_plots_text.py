"""What the plots say in words: a confusion plot states the frames its rows rest on."""

from amchw.plots import class_support


def test_class_support_states_the_frames_per_class():
    assert class_support([[3, 1], [0, 4]]) == "4 frames per class"
    assert class_support([[1, 0], [0, 0]]) == "1 frame per class"
    assert class_support([[2, 0, 0], [5, 5, 0], [0, 0, 0]]) == "2-10 frames per class"
    assert class_support([[0, 0], [0, 0]]) == "no frames"
