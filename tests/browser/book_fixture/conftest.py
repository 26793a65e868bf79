# The executed fixture notebooks here are test inputs for test_book.py, not notebooks for nbval to re-run.
collect_ignore_glob = ["*.ipynb"]
