"""VRNN Handwriting Lab: ``streamlit run app.py``.

Draw (or upload) handwriting, see a variational RNN continue it, where it was
surprised (KL per step) and how its latent state moved; retrain it on your own ink.
The page lives in ``vrnn/app/`` (figures, canvas, jobs... importable and tested
without Streamlit); this file only starts it.
"""

from vrnn.app.ui import main

main()
