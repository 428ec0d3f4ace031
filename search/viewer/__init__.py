"""What optuna-dashboard shows of a study: the study note, learning-curve artifacts, the server.

note (the markdown note) <- curves (learning-curve PNGs linked to trials, and `publish`);
server (optuna-dashboard's WSGI app, with the --read-only guards). The command line is
`search/dashboard.py`.
"""
