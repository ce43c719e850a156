"""The Streamlit dashboard, run as a script (``streamlit run app/main.py``), never imported as a package.

This file only makes the folder a regular package, so that a wheel install (where setuptools' package-dir
mapping installs ``app/`` as ``fusioncore_app``) finds it through :mod:`importlib.resources`
(``fusioncore.inspect.launch``). The modules here import each other by bare name (``main.py`` puts this
folder on ``sys.path``), the same in a checkout and in an installed copy.
"""
