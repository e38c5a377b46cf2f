"""lambdaserve: scikit-learn models on AWS Lambda, versioned, canaried and rolled back by alias.

Importing the package imports nothing else: the Lambda layer ships only the serving modules.
"""

__version__ = "0.1.0"
