'use strict';
// The credit-request form: the invoice autocomplete asks only for the chosen customer's invoices.
// jQuery runs prefilters after Select2's query is serialized and before it is sent, so the
// customer is added to that query; the server filters on it (InvoiceReviewMixin.get_search_results).
(function ($) {
    $.ajaxPrefilter(function (options) {
        const customer = document.getElementById('id_customer');
        if (!customer || !customer.value || typeof options.data !== 'string') {
            return;
        }
        if (options.data.indexOf('model_name=creditrequest') !== -1 && options.data.indexOf('field_name=invoice') !== -1) {
            options.data += '&customer=' + encodeURIComponent(customer.value);
        }
    });
    $(document).on('change', '#id_customer', function () {
        $('#id_invoice').val(null).trigger('change');
    });
})(django.jQuery);
