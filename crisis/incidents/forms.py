from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from crisis.models import Severity


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class IncidentForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(min=3, max=200)])
    mode = RadioField(
        _l("Mode"),
        choices=[SelectChoice("live", _l("Live: messages reach the public")),
                 SelectChoice("drill", _l("Drill: everything stays in the sandbox"))],
        default="drill",
        validators=[DataRequired()],
    )
    severity = SelectField(_l("Severity"), choices=[SelectChoice(s.value, s.value) for s in Severity],
                           default=Severity.unknown.value)
    language = SelectField(_l("Language of the messages"),
                           choices=[SelectChoice("nl", "Nederlands"), SelectChoice("en", "English")],
                           default="nl")
    areas = MultiCheckboxField(_l("Areas"), coerce=int)
