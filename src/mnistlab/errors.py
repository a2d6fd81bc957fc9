"""The one exception type users see.

Anything a user can cause (a wrong name, a missing file, an unreachable source)
raises :class:`MnistlabError` with a message that says what was wrong and what
to do. The CLI prints it as one line and exits non-zero; library users can
catch it.
"""


class MnistlabError(Exception):
    """A problem the user can fix; ``str(err)`` is a complete one-line message.

    Examples
    --------
    >>> import mnistlab
    >>> try:
    ...     mnistlab.make_config("resnet")
    ... except mnistlab.MnistlabError as err:
    ...     print(err)
    unknown model 'resnet'; choose one of: fnn, cnn-fast, ...
    """
