"""The forms patients fill: parsed by Django forms, checked by the booking app's own rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from creneau.booking.patients import (
    CallerCriteria,
    Contact,
    PatientDetails,
    PatientDetailsInvalid,
    caller_criteria_clean,
    patient_details_clean,
    patient_details_errors,
)


class SearchForm(forms.Form):
    what = forms.CharField(label=_("Specialty or reason for the visit"), required=False)
    where = forms.CharField(label=_("Hospital, city or postcode"), required=False, max_length=100)
    when = forms.ChoiceField(
        label=_("When"),
        choices=[("soon", _("As soon as possible")), ("date", _("From a date"))],
        required=False,
        initial="soon",
        widget=forms.RadioSelect,
    )
    date = forms.DateField(
        label=_("Date"), required=False, widget=forms.DateInput({"type": "date"})
    )
    latitude = forms.FloatField(
        required=False, min_value=-90, max_value=90, widget=forms.HiddenInput
    )
    longitude = forms.FloatField(
        required=False, min_value=-180, max_value=180, widget=forms.HiddenInput
    )


class FocusFirstError(forms.Form):
    """After a failed submit the page opens on the first field in error (the HTML
    `autofocus` attribute: no script needed), which names its error through aria-describedby."""

    def add_error(self, field, error) -> None:
        super().add_error(field, error)
        first = next((name for name in self.fields if name in self.errors), None)
        for name, form_field in self.fields.items():
            if name == first:
                form_field.widget.attrs["autofocus"] = True
            else:
                form_field.widget.attrs.pop("autofocus", None)

    def add_rule_errors(self, error: PatientDetailsInvalid) -> None:
        """The booking rules' refusals, each on its field (or the form when it has none)."""
        for field, message in error.errors.items():
            self.add_error(field if field in self.fields else None, message)

    def error_links(self) -> list[tuple[str, str]]:
        """(field id, "label: error") for the summary above the form, in the form's order."""
        return [
            (
                # A group of boxes has no one label: the link goes to its first box.
                self[name].id_for_label or f"{self[name].auto_id}_0",
                _("%(label)s: %(error)s")
                % {"label": field.label, "error": " ".join(self.errors[name])},
            )
            for name, field in self.fields.items()
            if name in self.errors
        ]


class PatientForm(FocusFirstError):
    last_name = forms.CharField(
        label=_("Last name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "family-name"}),
    )
    first_name = forms.CharField(
        label=_("First name"),
        max_length=100,
        widget=forms.TextInput({"autocomplete": "given-name"}),
    )
    birth_date = forms.DateField(
        label=_("Date of birth"),
        widget=forms.DateInput({"type": "date", "autocomplete": "bday"}),
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=30,
        help_text=_(
            "Any number, in France or abroad, for example 06 12 34 56 78. Text messages go "
            "only to mobile numbers in France; with another number, give an e-mail address."
        ),
        widget=forms.TextInput({"type": "tel", "autocomplete": "tel"}),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        help_text=_("Needed when the phone cannot receive text messages."),
        widget=forms.EmailInput({"autocomplete": "email"}),
    )
    contact = Contact.SELF
    fields_read = ("last_name", "first_name", "birth_date", "phone", "email")

    def patient(self, language: str) -> PatientDetails | None:
        """The details checked by the booking rules, or None with the errors on the form:
        every error at once, the rules' included for the fields the form could read."""
        if not self.is_valid():
            readable = {
                name: self.cleaned_data[name]
                for name in self.fields_read
                if name in self.cleaned_data
            }
            errors = patient_details_errors(contact=self.contact, **readable)
            if errors:
                self.add_rule_errors(PatientDetailsInvalid(errors, prefix=""))
            return None
        data = self.cleaned_data
        try:
            return patient_details_clean(
                last_name=data["last_name"],
                first_name=data["first_name"],
                birth_date=data["birth_date"],
                phone=data["phone"],
                email=data["email"] or "",
                language=language,
                contact=self.contact,
                no_phone_reason=data.get("no_phone_reason") or "",
            )
        except PatientDetailsInvalid as error:
            self.add_rule_errors(error)
            return None


class CallerPatientForm(PatientForm):
    """The desk's and the call centres' form: the number the caller gives, of any kind, or
    none (a person without a phone) with the reason; the staff member tells the caller."""

    contact = Contact.STAFF
    fields_read = (*PatientForm.fields_read, "no_phone_reason")

    no_phone_reason = forms.CharField(
        label=_("No phone: why"),
        required=False,
        max_length=200,
        help_text=_("Only when the patient has no phone number at all."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        phone = self.fields["phone"]
        phone.required = False
        phone.help_text = _(
            "The number the caller gives: mobile or landline, in France or abroad. Leave it "
            "empty for a person without a phone, and say why below."
        )
        self.fields["email"].help_text = _("Optional.")


class WaitingListForm(PatientForm):
    visit_type = forms.ChoiceField(label=_("Visit"))
    before = forms.DateField(
        label=_("I would like an appointment before"),
        widget=forms.DateInput({"type": "date"}),
    )

    field_order = ["visit_type", "before"]


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why are you cancelling? (optional)"),
        required=False,
        choices=[
            ("", _("I prefer not to say")),
            ("no_longer_needed", _("I no longer need this appointment")),
            ("unavailable", _("I am not available at that time")),
            ("elsewhere", _("I found an appointment elsewhere")),
            ("other", _("Another reason")),
        ],
    )


class CallerLookupForm(FocusFirstError):
    """What an operator's agent asks a caller to find their appointments."""

    last_name = forms.CharField(label=_("Caller's last name"), max_length=100)
    birth_date = forms.DateField(label=_("Date of birth"), widget=forms.DateInput({"type": "date"}))
    phone = forms.CharField(
        label=_("Phone"), max_length=30, widget=forms.TextInput({"type": "tel"})
    )

    def criteria(self) -> CallerCriteria | None:
        """The criteria checked by the booking rules, or None with the errors on the form."""
        if not self.is_valid():
            return None
        try:
            return caller_criteria_clean(**self.cleaned_data)
        except PatientDetailsInvalid as error:
            self.add_rule_errors(error)
            return None
