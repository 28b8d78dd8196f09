"""The one-line reason of ``privrob: error: <reason>``: jsonargparse's nested parse errors condensed to the value
given and what was expected, with the valid names where there is a list."""

from __future__ import annotations

import pydoc
import re

from jsonargparse import ArgumentParser

#: lines of jsonargparse's messages that frame the reason rather than give it
_FRAMING = ("Parser key", "Does not validate against any of the Union subtypes", "Subtypes:", "Errors:",
            "Expected a <class 'NoneType'>", "Given value", "Problem with given class_path")
#: top-level packages of this project, whose classes are listed before (and instead of) a library's
_OWN = ("privrob", "callbacks")


def one_line(message: str) -> str:
    """``message`` (an exception's text) as one line; a jsonargparse error becomes ``<key>: <reason>``."""
    keys = re.findall(r'Parser key "([^"]+)":', message)  # nested for an init argument of a class-path value
    unknown = (re.search(r"Expected a (?:path but|dot import path string:) (\w[\w.]*)", message)
               or re.search(r"class_path '([^']+)':\s*module '[^']+' has no attribute", message))
    option = re.search(r"Problem with given class_path '([^']+)':\s*Option '([^']+)' is not accepted", message)
    subtypes = re.search(r"^\s*Subtypes: \[(.*)\]$", message, re.M)
    given = re.search(r"^\s*Given value: (.*)$", message, re.M)
    wrong = re.search(r"Expected a (.+?)\. Got value: (.*)", message)
    details = [s for s in (line.strip(" -") for line in re.sub(r'Parser key "[^"]+":', "", message).splitlines())
               if s and not s.startswith(_FRAMING)]
    if unknown:
        names = class_names(subtypes[1]) if subtypes and len(keys) == 1 else []
        reason = f"unknown class {unknown[1]!r}" + (f"; available: {', '.join(names)}" if names else "")
    elif option:
        cls = pydoc.locate(option[1])
        reason = f"{cls.__name__} has no option {option[2]!r}; its options: {', '.join(init_options(cls))}"
    elif wrong:
        reason = f"expected {_type_name(wrong[1])}, got {wrong[2]!r}"
    elif details and details[0].startswith("Expected a <class") and subtypes and given:
        reason = f"expected {_type_name(subtypes[1]).replace(', NoneType', ' or null')}, got {given[1]!r}"
    else:
        reason = " ".join(" ".join(details or [message]).split())
    return f"{'.init_args.'.join(keys)}: {reason}" if keys else reason


def _type_name(text: str) -> str:
    """``<class 'int'>`` as ``int``, ``typing.Literal[...]`` as ``Literal[...]``."""
    return re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", text).replace("typing.", "")


def class_names(subtypes: str) -> list[str]:
    """Short names of the classes a class-path option accepts, from jsonargparse's ``Subtypes: [...]`` list: the
    project's own subclasses without their bases if there are any, else every public subclass."""
    bases = [pydoc.locate(path) for path in re.findall(r"(?:<class '|\[)([\w.]+)", subtypes)]
    found = {c for base in bases if isinstance(base, type) and base is not type(None) for c in _subclasses(base)}
    own = [c for c in found if c.__module__.split(".")[0] in _OWN]
    own = [c for c in own if not any(o is not c and issubclass(o, c) for o in own)]
    return sorted({c.__name__ for c in own or found})


def _subclasses(cls: type) -> set[type]:
    public = {c for c in cls.__subclasses__() if not c.__name__.startswith("_") and "<locals>" not in c.__qualname__}
    return public.union(*(_subclasses(c) for c in cls.__subclasses__()))


def init_options(cls: type) -> list[str]:
    """The ``init_args`` keys jsonargparse accepts for ``cls`` (its ``**kwargs`` followed to the base class)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls)
    return list(parser.get_defaults().keys())
