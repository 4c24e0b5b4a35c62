"""The template front end: a SAM (or CloudFormation) template read, expanded, checked
and deployed into unkai's services through their resource providers.

``loader`` reads the file (keeping line numbers; ``errors`` holds its ``TemplateError``),
``parameters`` and ``intrinsics`` evaluate it, ``sam`` expands SAM offline (keeping
translations in the user's cache), ``plan`` orders the resources, ``engine`` creates,
updates and deletes them, ``requirements`` installs functions' dependencies, and
``runner`` keeps the stack of ``unkai up TEMPLATE`` applied.
"""
