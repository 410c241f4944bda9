"""AUHead (arXiv 2602.09534): audio -> Action Units with an audio-language model (stage 1),
then AU-guided diffusion (stage 2). See docs/auhead.md for what is known and chosen."""
