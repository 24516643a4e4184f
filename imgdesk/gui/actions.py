"""The window's actions, keyed by :class:`Action` and built in one place.

Like Picard's ``MainAction``: every action has a key, its words, shortcuts and icon are
declared once in :data:`ACTION_SPECS`, and the menus, the toolbar and the context menus
list keys, not widgets. The window supplies one slot per key and, as the selection
changes, what is selected (:meth:`WindowActions.enable_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, auto

from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle, QToolBar, QWidget

from imgdesk.core.records import HIGH, LOW, NORMAL
from imgdesk.core.repository import IMPORTING, ImageInfo, RequestInfo
from imgdesk.core.states import ImageStatus

_SP = QStyle.StandardPixmap
Shortcut = QKeySequence.StandardKey | str


class Action(Enum):
    """Every action of the window."""

    OPEN = auto()
    EXPORT = auto()
    OPEN_FOLDER = auto()
    SETTINGS = auto()
    QUIT = auto()
    RETRY_IMAGE = auto()
    RETRY_SELECTED = auto()
    RETRY_FAILED = auto()
    PAUSE = auto()
    CANCEL = auto()
    DELETE = auto()
    PRIORITY = auto()  # a submenu: its slot reads the choice (WindowActions.chosen_priority)
    COPY_URL = auto()
    COPY_INPUT_URL = auto()
    OPEN_IMAGE = auto()
    DASHBOARD = auto()
    FOCUS_SEARCH = auto()
    GUIDE = auto()
    SHORTCUTS = auto()
    OPEN_LOG_FOLDER = auto()
    ABOUT = auto()


@dataclass(frozen=True)
class ActionSpec:
    """What an action looks like: menu text, toolbar text, shortcuts, icon and tip."""

    text: str
    icon_text: str = ""
    shortcuts: tuple[Shortcut, ...] = ()
    icon: QStyle.StandardPixmap | None = None
    tip: str = ""
    menu_role: QAction.MenuRole | None = None


ACTION_SPECS: dict[Action, ActionSpec] = {
    Action.OPEN: ActionSpec(
        "&Open CSV Files\u2026",
        "Open",
        (QKeySequence.StandardKey.Open,),
        _SP.SP_DialogOpenButton,
        "Load one or more product CSV files and start processing them",
    ),
    Action.EXPORT: ActionSpec(
        "&Export Output CSV\u2026",
        "Export CSV",
        ("Ctrl+E",),
        _SP.SP_DialogSaveButton,
        "Write the CSV with the Output Image Urls column for the selected request",
    ),
    Action.OPEN_FOLDER: ActionSpec(
        "Open Output &Folder",
        "Open Folder",
        (),
        _SP.SP_DirOpenIcon,
        "Show the compressed images of the selected request in your file manager",
    ),
    Action.SETTINGS: ActionSpec(
        "&Settings\u2026",
        "",
        (QKeySequence.StandardKey.Preferences,),
        _SP.SP_FileDialogDetailedView,
        "Quality, limits, data folder, public base URL and webhook",
        QAction.MenuRole.PreferencesRole,
    ),
    Action.QUIT: ActionSpec(
        "&Quit", shortcuts=(QKeySequence.StandardKey.Quit,), menu_role=QAction.MenuRole.QuitRole
    ),
    Action.RETRY_IMAGE: ActionSpec("Retry This Image", icon=_SP.SP_BrowserReload),
    Action.RETRY_SELECTED: ActionSpec(
        "&Retry Selected Images",
        "Retry Selected",
        ("Ctrl+R",),
        _SP.SP_BrowserReload,
        "Try the selected failed images again",
    ),
    Action.RETRY_FAILED: ActionSpec(
        "Retry All &Failures",
        "Retry Failures",
        ("Ctrl+Shift+R",),
        _SP.SP_BrowserReload,
        "Try every failed image of the selected request again",
    ),
    Action.PAUSE: ActionSpec(
        "&Pause All",
        "Pause",
        ("Space", "Ctrl+P"),
        _SP.SP_MediaPause,
        "Stop starting new images (running ones finish); press again to resume",
    ),
    Action.CANCEL: ActionSpec(
        "&Cancel Request",
        "Cancel",
        (),
        _SP.SP_BrowserStop,
        "Stop the selected request; its unfinished images fail as cancelled and can be "
        "retried later",
    ),
    Action.DELETE: ActionSpec(
        "&Delete Request\u2026",
        "Delete",
        (QKeySequence.StandardKey.Delete,),
        _SP.SP_TrashIcon,
        "Forget the selected request (and, if you choose, delete its images)",
    ),
    Action.PRIORITY: ActionSpec(
        "Pr&iority",
        tip="Serve the selected request's images before or after those of other requests",
    ),
    Action.COPY_URL: ActionSpec(
        "&Copy Output URL",
        shortcuts=(QKeySequence.StandardKey.Copy,),
        tip="Copy the output URLs of the selected images",
    ),
    Action.COPY_INPUT_URL: ActionSpec("Copy &Input URL"),
    Action.OPEN_IMAGE: ActionSpec(
        "Open &Image",
        icon=_SP.SP_FileIcon,
        tip="Open the compressed image in your image viewer (a bucket's in the browser)",
    ),
    Action.DASHBOARD: ActionSpec(
        "&Dashboard\u2026",
        "",
        ("Ctrl+D",),
        _SP.SP_FileDialogInfoView,
        "Statistics per request: duration, images/s, bytes saved, error causes",
    ),
    Action.FOCUS_SEARCH: ActionSpec("Find\u2026", shortcuts=(QKeySequence.StandardKey.Find,)),
    Action.GUIDE: ActionSpec(
        "imgdesk &Guide",
        shortcuts=(QKeySequence.StandardKey.HelpContents,),
        icon=_SP.SP_DialogHelpButton,
        tip="How imgdesk works, from the CSV you drop to the CSV you get back",
    ),
    Action.SHORTCUTS: ActionSpec("&Keyboard Shortcuts", tip="Every shortcut of the window"),
    Action.OPEN_LOG_FOLDER: ActionSpec(
        "Open &Log Folder", tip="Show the folder of imgdesk's log files in your file manager"
    ),
    Action.ABOUT: ActionSpec("&About imgdesk", menu_role=QAction.MenuRole.AboutRole),
}

# The Priority submenu's choices, highest first: the priority each sets and its words.
PRIORITY_CHOICES = ((HIGH, "&High"), (NORMAL, "&Normal"), (LOW, "&Low"))

# Where the actions show; None is a separator.
# The Request menu, which the toolbar shows too.
_REQUEST_COMMANDS: tuple[Action | None, ...] = (
    Action.RETRY_SELECTED,
    Action.RETRY_FAILED,
    None,
    Action.PAUSE,
    Action.CANCEL,
    Action.DELETE,
)
MENU_BAR: tuple[tuple[str, tuple[Action | None, ...]], ...] = (
    (
        "&File",
        (Action.OPEN, Action.EXPORT, Action.OPEN_FOLDER, None, Action.SETTINGS, None, Action.QUIT),
    ),
    ("&Edit", (Action.COPY_URL, Action.COPY_INPUT_URL, None, Action.FOCUS_SEARCH)),
    ("&Request", (*_REQUEST_COMMANDS, None, Action.PRIORITY)),
    ("&View", (Action.DASHBOARD,)),  # the toolbar's and the docks' toggles follow
    (
        "&Help",
        (Action.GUIDE, Action.SHORTCUTS, None, Action.OPEN_LOG_FOLDER, None, Action.ABOUT),
    ),
)
TOOLBAR: tuple[Action | None, ...] = (
    Action.OPEN,
    Action.EXPORT,
    Action.OPEN_FOLDER,
    None,
    *_REQUEST_COMMANDS,
    None,
    Action.DASHBOARD,
    Action.SETTINGS,
)
REQUEST_MENU: tuple[Action | None, ...] = (
    Action.EXPORT,
    Action.OPEN_FOLDER,
    None,
    Action.PRIORITY,
    None,
    Action.RETRY_FAILED,
    Action.CANCEL,
    Action.DELETE,
)
IMAGE_MENU: tuple[Action | None, ...] = (
    Action.RETRY_IMAGE,
    Action.RETRY_SELECTED,
    Action.RETRY_FAILED,
    None,
    Action.COPY_URL,
    Action.COPY_INPUT_URL,
    Action.OPEN_IMAGE,
    Action.OPEN_FOLDER,
)
PREVIEW_BUTTONS: tuple[Action, ...] = (Action.RETRY_IMAGE, Action.COPY_URL, Action.OPEN_IMAGE)

# Freedesktop/platform theme icons for the style's standard ones, where a theme has them.
_THEME_ICONS = {
    _SP.SP_DialogOpenButton: QIcon.ThemeIcon.DocumentOpen,
    _SP.SP_DialogSaveButton: QIcon.ThemeIcon.DocumentSaveAs,
    _SP.SP_DirOpenIcon: QIcon.ThemeIcon.FolderOpen,
    _SP.SP_FileDialogDetailedView: QIcon.ThemeIcon.DocumentProperties,
    _SP.SP_BrowserReload: QIcon.ThemeIcon.ViewRefresh,
    _SP.SP_MediaPause: QIcon.ThemeIcon.MediaPlaybackPause,
    _SP.SP_MediaPlay: QIcon.ThemeIcon.MediaPlaybackStart,
    _SP.SP_BrowserStop: QIcon.ThemeIcon.ProcessStop,
    _SP.SP_TrashIcon: QIcon.ThemeIcon.EditDelete,
    _SP.SP_FileIcon: QIcon.ThemeIcon.InsertImage,
    _SP.SP_FileDialogInfoView: QIcon.ThemeIcon.DialogInformation,
    _SP.SP_DialogHelpButton: QIcon.ThemeIcon.HelpFaq,
}


def themed_icon(widget: QWidget, fallback: QStyle.StandardPixmap) -> QIcon:
    """The desktop theme's icon (aware of dark mode where it can be), else the style's."""
    style_icon = widget.style().standardIcon(fallback)
    theme = _THEME_ICONS.get(fallback)
    if theme is not None and QIcon.hasThemeIcon(theme):
        return QIcon.fromTheme(theme, style_icon)
    return style_icon


class WindowActions:
    """Every :class:`Action` of a window, created once and connected to its slot.

    The actions are added to the window itself, so their shortcuts work wherever the focus
    is in it.

    Args:
        window: the owner of the actions.
        slots: what each action does when triggered; one for every key. The slot of
            :attr:`Action.PRIORITY` runs when one of its choices is picked, and reads which
            from :meth:`chosen_priority`.
    """

    def __init__(self, window: QWidget, slots: Mapping[Action, Callable[[], object]]) -> None:
        """Create and connect every action."""
        missing = set(Action) - set(slots)
        if missing:
            raise ValueError(f"no slot for {sorted(action.name for action in missing)}")
        self._window = window
        self._priorities = QActionGroup(window)  # exclusive: one priority is checked
        self._actions = {
            key: (
                self._create_priority_menu(ACTION_SPECS[key], slots[key])
                if key == Action.PRIORITY
                else self._create(ACTION_SPECS[key], slots[key])
            )
            for key in Action
        }

    def __getitem__(self, key: Action) -> QAction:
        """The action of ``key``."""
        return self._actions[key]

    def of(self, keys: Sequence[Action | None]) -> list[QAction | None]:
        """The actions of ``keys``, in order; None stays None (a separator)."""
        return [None if key is None else self._actions[key] for key in keys]

    def add_to(self, target: QMenu | QToolBar, keys: Sequence[Action | None]) -> None:
        """Add the actions of ``keys`` to a menu or a toolbar, with separators for None."""
        for action in self.of(keys):
            if action is None:
                target.addSeparator()
            else:
                target.addAction(action)

    def chosen_priority(self) -> str:
        """The priority checked in the Priority submenu (the one just picked, in its slot)."""
        checked = self._priorities.checkedAction()
        return NORMAL if checked is None else str(checked.data())

    def show_paused(self, paused: bool) -> None:
        """Turn the pause action into "Resume" while the engine is paused, and back."""
        action = self._actions[Action.PAUSE]
        action.setText("&Resume All" if paused else "&Pause All")
        action.setIconText("Resume" if paused else "Pause")
        icon = _SP.SP_MediaPlay if paused else _SP.SP_MediaPause
        action.setIcon(themed_icon(self._window, icon))

    def enable_for(
        self,
        request: RequestInfo | None,
        selected: Sequence[ImageInfo],
        target: ImageInfo | None,
    ) -> None:
        """Enable what applies to the selected request, the selected images and the target.

        Args:
            request: the selected request, if any.
            selected: the selected images.
            target: the image a one-image action applies to (the row under a context menu,
                else the current one).
        """
        recorded = request is not None and request.status != IMPORTING
        enabled = {
            Action.EXPORT: recorded,
            Action.OPEN_FOLDER: recorded,
            Action.DELETE: request is not None,
            Action.PRIORITY: recorded,
            Action.RETRY_FAILED: request is not None and request.failed > 0,
            Action.CANCEL: request is not None and not request.finished,
            Action.RETRY_SELECTED: any(image.status == ImageStatus.FAILED for image in selected),
            Action.COPY_URL: any(image.output_url for image in selected),
            Action.COPY_INPUT_URL: bool(selected),
            Action.RETRY_IMAGE: target is not None and target.status == ImageStatus.FAILED,
            Action.OPEN_IMAGE: target is not None and bool(target.output_path),
        }
        for key, enable in enabled.items():
            self._actions[key].setEnabled(enable)
        priority = NORMAL if request is None else request.priority
        for choice in self._priorities.actions():
            choice.setChecked(choice.data() == priority)

    def _create_priority_menu(self, spec: ActionSpec, slot: Callable[[], object]) -> QAction:
        """The Priority submenu, one checkable choice a priority; its action opens it."""
        menu = QMenu(spec.text, self._window)
        for priority, text in PRIORITY_CHOICES:
            choice = menu.addAction(text)
            choice.setCheckable(True)
            choice.setData(priority)
            self._priorities.addAction(choice)
        self._priorities.triggered.connect(lambda _choice: slot())
        action = menu.menuAction()
        action.setToolTip(spec.tip)
        action.setStatusTip(spec.tip)
        self._window.addAction(action)
        return action

    def _create(self, spec: ActionSpec, slot: Callable[[], object]) -> QAction:
        action = QAction(spec.text, self._window)
        if spec.icon_text:
            action.setIconText(spec.icon_text)
        if spec.icon is not None:
            action.setIcon(themed_icon(self._window, spec.icon))
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(shortcut) for shortcut in spec.shortcuts])
        if spec.tip:
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
        if spec.menu_role is not None:
            action.setMenuRole(spec.menu_role)
        action.triggered.connect(lambda _checked=False: slot())
        self._window.addAction(action)
        return action
