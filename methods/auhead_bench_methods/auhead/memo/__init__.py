"""MEMO (memoavatar/memo, Apache-2.0) rebuilt in our code: the backbone of the paper's main
results (``backbone: memo``)."""
